"""A zero-delay streaming server for the client's tests, run as its own process (`python chunk_server.py N`):
it prints its loopback port, then answers every POST with N one-token SSE events, each an HTTP chunk written
with its own send, then `[DONE]`. Streams of concurrent connections interleave chunk by chunk."""

from __future__ import annotations

import asyncio
import sys

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


TOKEN = http_chunk(b'data: {"choices":[{"index":0,"text":" tok","finish_reason":null}]}\n\n')
END = http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, chunks: int) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            writer.write(HEAD)
            for _ in range(chunks):
                writer.write(TOKEN)
                await asyncio.sleep(0)  # the other connections' chunks go between this one's
            writer.write(END)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main(chunks: int) -> None:
    server = await asyncio.start_server(lambda r, w: answer(r, w, chunks), "127.0.0.1", 0, backlog=256)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
