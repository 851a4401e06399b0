"""A hostile vLLM-compatible server of our own, for end-to-end tests of what the agent does with what a
target sends. It answers like vLLM (/v1/models, /version, /health, /tokenize, /metrics, streamed
/v1/completions with chunked transfer encoding and keep-alive) except for one completion request, the
`--bad`-th it receives (1-based), which it answers as `--mode` says; `nan_metrics` and `metrics_bad_utf8` spoil
/metrics instead, `long_model` serves a model whose id is longer than the store takes.
Raw asyncio streams, not a web framework: the point is to send what a framework would refuse to.

    python -m tests.hostile.server --port 8000 --mode endless --bad 3   (--port 0: any free port, printed)
"""

from __future__ import annotations

import argparse
import asyncio
import json

MODEL = "hostile-model"
MODES = ("none", "endless", "past_max", "huge_line", "bad_utf8", "usage_range", "usage_huge", "long_finish",
         "surrogate", "html200", "midchunk_close", "slowloris", "nan_metrics", "long_model", "usage_backwards",
         "metrics_bad_utf8")


def chunk(text: str = "t", finish: str | None = None, usage: dict | None = None, choices: bool = True) -> bytes:
    body = {"id": "cmpl-h", "object": "text_completion", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}] if choices else [],
            "usage": usage}
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class Hostile:
    def __init__(self, mode: str, bad: int) -> None:
        self.mode = mode
        self.bad = bad
        self.completions = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self.route(method, path.split("?")[0], body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def route(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is to be closed."""
        if path == "/v1/models":
            model = "m" * 300 if self.mode == "long_model" else MODEL
            return respond(writer, {"object": "list", "data": [{"id": model, "object": "model"}]})
        if path == "/version":
            return respond(writer, {"version": "0.0-hostile"})
        if path == "/health":
            return respond(writer, {})
        if path == "/tokenize":
            prompt = json.loads(body).get("prompt", "")
            return respond(writer, {"tokens": list(range(1, len(prompt.split()) + 1)), "count": 0})
        if path == "/metrics":
            value = "NaN" if self.mode == "nan_metrics" else "1"
            text = (f'vllm:num_requests_running{{model_name="{MODEL}"}} {value}\n'
                    f'vllm:num_requests_waiting{{model_name="{MODEL}"}} 0\n').encode()
            if self.mode == "metrics_bad_utf8":
                text = text.replace(MODEL.encode(), MODEL.encode() + b"\xff", 1)
            return respond(writer, text, "text/plain; charset=utf-8")
        if path == "/v1/completions" and method == "POST":
            self.completions += 1
            return await self.complete(json.loads(body), writer, self.completions == self.bad)
        return respond(writer, {"error": "not found"}, status="404 Not Found")

    async def complete(self, request: dict, writer: asyncio.StreamWriter, bad: bool) -> bool:
        mode = self.mode if bad else "none"
        max_tokens = int(request.get("max_tokens") or request.get("max_completion_tokens") or 16)
        prompt = len(request.get("prompt") or [])
        if mode == "html200":
            return respond(writer, b"<html><body>Gateway says hello</body></html>", "text/html")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")

        async def send(data: bytes) -> None:
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()

        if mode == "slowloris":
            print("hanging", flush=True)  # the test's cue: a request is now in flight for good
            while True:  # a comment line now and then: bytes keep coming, the response never does
                await send(b": ping\n\n")
                await asyncio.sleep(0.2)
        n = max_tokens + 100 if mode == "past_max" else max_tokens
        k = 0
        while k < n or mode == "endless":
            k += 1
            last = k == n
            if mode == "midchunk_close" and k == 2:
                whole = chunk()
                await send(whole[: len(whole) // 2])
                return False
            await send(chunk(finish="length" if last else None))
            if k % 64 == 0:
                await asyncio.sleep(0)
        tail = {
            "huge_line": b"data: {\"choices\":[{\"text\":\"" + b"x" * (2 << 20),
            "bad_utf8": b'data: {"choices":[{"index":0,"text":"\xff\xfe"}]}\n\n',
            "usage_range": chunk(usage=usage(20_000_000, n), choices=False),
            "usage_huge": chunk(usage=usage(prompt, 99_999_999_999), choices=False),
            "usage_backwards": chunk(usage=usage(prompt, n), choices=False) + chunk(usage=usage(prompt, n - 1)),
            "long_finish": chunk(finish="x" * 300),
            "surrogate": b'data: {"choices":[{"index":0,"text":"t","finish_reason":"\\ud800"}]}\n\n',
        }.get(mode, chunk(usage=usage(prompt, n), choices=False))
        await send(tail)
        await send(b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


def respond(writer: asyncio.StreamWriter, body: dict | bytes, content_type: str = "application/json",
            status: str = "200 OK") -> bool:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                 + data)
    return True


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, default="none")
    parser.add_argument("--bad", type=int, default=3)
    args = parser.parse_args()
    server = await asyncio.start_server(Hostile(args.mode, args.bad).handle, "127.0.0.1", args.port)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)  # --port 0: the one bound
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
