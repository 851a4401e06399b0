"""The Telemetry service over real gRPC on loopback, storing into chDB."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from siliconbench.agent.errors import DeliveryIncomplete
from siliconbench.agent.shipper import Shipper
from siliconbench.core.settings import ClientTls
from siliconbench.agent.spool import Spool
from siliconbench.collector.auth import TokenFile, server_credentials
from siliconbench.collector.options import serve_config
from siliconbench.collector.server import ServerOptions, build_server
from siliconbench.collector.serving import server_options
from siliconbench.core.wire import pb
from siliconbench.core.rpc import pb_grpc
from tests.faults.agent_proc import run_event


def record(run_id: str, i: int, **overrides) -> pb.RequestRecord:
    fields = dict(run_id=run_id, request_id=f"{run_id}/0/{i}", step=0, concurrency=1, start_unix_ns=time.time_ns(),
                  ttft_ns=1_000_000, e2e_ns=5_000_000, chunk_offset_ns=[1_000_000, 3_000_000],
                  chunk_tokens=[1, 1], prompt_tokens=8, output_tokens=2, http_status=200, finish_reason="length")
    fields.update(overrides)
    return pb.RequestRecord(**fields)


def count(store, table: str, run_id: str) -> int:
    return store.query(f"SELECT count() FROM {{db}}.{table} WHERE run_id = {{r:String}}", {"r": run_id}).result_rows[0][0]


async def open_stream(port: int, agent_id: str, metadata=()):
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    call = pb_grpc.TelemetryStub(channel).Stream(metadata=metadata)
    try:
        await call.write(pb.AgentMessage(hello=pb.Hello(agent_id=agent_id, node_name=agent_id)))
    except grpc.aio.AioRpcError:
        pass  # refused (a token) before the Hello went out: the first read raises the status
    return channel, call


async def refusal(port: int, metadata=()) -> grpc.StatusCode:
    """The status of a stream that writes nothing and half-closes: the collector refuses a bad token
    before reading anything, and ends an accepted stream without a Hello with OK. (A write racing with
    the refusal may fail with INTERNAL in place of the server's status: grpc/grpc#36066.)"""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = pb_grpc.TelemetryStub(channel).Stream(metadata=metadata)
        await call.done_writing()
        return await call.code()


@pytest.fixture
async def server(store):
    srv, service, port = await build_server(store, "127.0.0.1:0")
    yield port
    await srv.stop(1)
    service.close()


@pytest.fixture
def tokens_file(tmp_path) -> Path:
    path = tmp_path / "agent-tokens"
    path.write_text("# one token per line\nsecret-one\nsecret-two\n")
    return path


@pytest.fixture
async def guarded_server(store, tokens_file):
    srv, service, port = await build_server(store, "127.0.0.1:0", ServerOptions(tokens=TokenFile(tokens_file)))
    yield port
    await srv.stop(1)
    service.close()


def shipper_for(address: str, agent_id: str, spool_dir: Path, **kwargs) -> Shipper:
    return Shipper(address, pb.Hello(agent_id=agent_id), Spool.open(spool_dir, agent_id), **kwargs)


async def test_shipper_delivers_every_record_and_the_collector_acks_after_storing(store, server, unique_id, tmp_path):
    shipper = shipper_for(f"127.0.0.1:{server}", f"agent-{unique_id}", tmp_path, max_items=7)
    shipper.start()
    for i in range(50):
        shipper.add(record(unique_id, i))
    await shipper.close(timeout_s=20)
    assert shipper.pending == 0
    assert count(store, "requests", unique_id) == 50


def kept_within(store, run_id: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while count(store, "kept_steps", run_id) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("keep_steps", [True, False])
async def test_a_step_over_is_kept_unless_serve_says_no_keep_steps(store, unique_id, tmp_path, keep_steps):
    srv, service, port = await build_server(store, "127.0.0.1:0", server_options(serve_config(keep_steps=keep_steps)))
    shipper = shipper_for(f"127.0.0.1:{port}", f"agent-{unique_id}", tmp_path)
    shipper.start()
    for i in range(5):
        shipper.add(record(unique_id, i))
    shipper.add(run_event(unique_id, pb.PHASE_END))  # the run ended: its step is over
    await shipper.close(timeout_s=20)
    if keep_steps:  # kept by the keeper's thread, a moment after the ack
        await asyncio.to_thread(kept_within, store, unique_id, 10.0)
    await srv.stop(1)
    service.close()  # joins the keeper: nothing is kept after this
    assert (service.keeper is not None) == keep_steps
    assert count(store, "kept_steps", unique_id) == count(store, "kept_answers", unique_id) == int(keep_steps)
    assert count(store, "requests", unique_id) == 5


async def test_replayed_batch_is_stored_once(store, server, unique_id):
    channel, call = await open_stream(server, f"agent-{unique_id}")
    batch = pb.Batch(seq=1, batch_id=f"agent-{unique_id}/boot/1", requests=[record(unique_id, i) for i in range(3)])
    for _ in range(2):  # the same batch again, as after a reconnect
        await call.write(pb.AgentMessage(batch=batch))
        reply = await call.read()
        assert reply.ack.seq == 1
    await call.done_writing()
    await channel.close()
    assert count(store, "requests", unique_id) == 3


async def test_invalid_batch_gets_a_typed_error_and_nothing_is_stored(store, server, unique_id):
    channel, call = await open_stream(server, f"agent-{unique_id}")
    bad = record(unique_id, 0, e2e_ns=-5)
    good = record(unique_id, 1)
    await call.write(pb.AgentMessage(batch=pb.Batch(seq=1, batch_id=f"{unique_id}/1", requests=[good, bad])))
    reply = await call.read()
    assert reply.error.code == pb.ERROR_CODE_INVALID and "negative duration" in reply.error.message
    # the stream stays usable for the next, valid batch
    await call.write(pb.AgentMessage(batch=pb.Batch(seq=2, batch_id=f"{unique_id}/2", requests=[good])))
    assert (await call.read()).ack.seq == 2
    await call.done_writing()
    await channel.close()
    assert count(store, "requests", unique_id) == 1


async def test_malformed_bytes_get_a_protocol_error_and_the_stream_goes_on(store, server, unique_id):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server}") as channel:
        call = channel.stream_stream("/siliconbench.telemetry.v1.Telemetry/Stream", request_serializer=None,
                                     response_deserializer=pb.CollectorMessage.FromString)()
        await call.write(pb.AgentMessage(hello=pb.Hello(agent_id=f"agent-{unique_id}")).SerializeToString())
        await call.write(b"\x12\xff\xff\xff\x0fgarbage")
        assert (await call.read()).error.code == pb.ERROR_CODE_PROTOCOL
        good = pb.AgentMessage(batch=pb.Batch(seq=1, batch_id=f"{unique_id}/1", requests=[record(unique_id, 0)]))
        await call.write(good.SerializeToString())
        assert (await call.read()).ack.seq == 1
        await call.done_writing()
    assert count(store, "requests", unique_id) == 1


async def test_stream_without_hello_is_refused(server):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server}") as channel:
        call = pb_grpc.TelemetryStub(channel).Stream()
        await call.write(pb.AgentMessage(batch=pb.Batch(seq=1, batch_id="x/1")))
        reply = await call.read()
        assert reply.error.code == pb.ERROR_CODE_PROTOCOL


async def test_wrong_token_is_refused_as_unauthenticated_and_the_log_never_shows_it(guarded_server, caplog):
    code = await refusal(guarded_server, metadata=(("authorization", "Bearer guessed-secret"),))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "refused: missing or wrong bearer token" in caplog.text
    assert "guessed-secret" not in caplog.text


async def test_missing_token_is_refused_as_unauthenticated(guarded_server):
    assert await refusal(guarded_server) == grpc.StatusCode.UNAUTHENTICATED


async def test_any_token_of_the_file_is_accepted(store, guarded_server, unique_id, tmp_path):
    shipper = shipper_for(f"127.0.0.1:{guarded_server}", f"agent-{unique_id}", tmp_path, token="secret-two")
    shipper.start()
    shipper.add(record(unique_id, 0))
    await shipper.close(timeout_s=20)
    assert count(store, "requests", unique_id) == 1


async def test_rotated_token_file_takes_effect_without_restart(guarded_server, tokens_file, unique_id, tmp_path):
    tokens_file.write_text("rotated\n")
    code = await refusal(guarded_server, metadata=(("authorization", "Bearer secret-one"),))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def _make_cert(directory: Path, name: str, ca: tuple[Path, Path] | None) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subj = ["-subj", f"/CN={name}"]
    if ca is None:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", key,
                        "-out", cert, *subj, "-addext", "basicConstraints=critical,CA:TRUE"], check=True, capture_output=True)
        return cert, key
    csr = directory / f"{name}.csr"
    ext = directory / f"{name}.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, *subj],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
                    "-days", "2", "-out", cert, "-extfile", ext], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("pki")
    ca = _make_cert(directory, "ca", None)
    return {"ca": ca, "server": _make_cert(directory, "server", ca), "agent": _make_cert(directory, "agent", ca)}


async def test_mtls_agent_with_a_certificate_delivers(store, pki, unique_id, tmp_path):
    creds = server_credentials(*pki["server"], client_ca_file=pki["ca"][0])
    srv, service, port = await build_server(store, "127.0.0.1:0", ServerOptions(credentials=creds))
    try:
        shipper = shipper_for(f"localhost:{port}", f"agent-{unique_id}", tmp_path,
                              credentials=ClientTls(pki["ca"][0], *pki["agent"]).credentials())
        shipper.start()
        shipper.add(record(unique_id, 0))
        await shipper.close(timeout_s=20)
    finally:
        await srv.stop(1)
        service.close()
    assert count(store, "requests", unique_id) == 1


async def test_mtls_refuses_an_agent_without_a_certificate(store, pki, unique_id):
    creds = server_credentials(*pki["server"], client_ca_file=pki["ca"][0])
    srv, service, port = await build_server(store, "127.0.0.1:0", ServerOptions(credentials=creds))
    try:
        async with grpc.aio.secure_channel(f"localhost:{port}", ClientTls(pki["ca"][0]).credentials()) as channel:
            call = pb_grpc.TelemetryStub(channel).Stream()
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call.write(pb.AgentMessage(hello=pb.Hello(agent_id="no-cert")))
                await asyncio.wait_for(call.read(), 10)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await srv.stop(1)
        service.close()


async def test_control_cli_reaches_an_mtls_collector_with_the_agent_tls_variables(store, pki, monkeypatch):
    from siliconbench.collector import run_cli

    creds = server_credentials(*pki["server"], client_ca_file=pki["ca"][0])
    srv, service, port = await build_server(store, "127.0.0.1:0", ServerOptions(credentials=creds))
    for name, path in (("CA", pki["ca"][0]), ("CERT", pki["agent"][0]), ("KEY", pki["agent"][1])):
        monkeypatch.setenv(f"SILICONBENCH_TLS_{name}", str(path))
    try:
        reply = await asyncio.to_thread(run_cli._call, f"localhost:{port}", "ListAgents", pb.ListAgentsRequest())
    finally:
        await srv.stop(1)
        service.close()
    assert list(reply.agents) == []


@pytest.fixture
async def short_lived_streams(store):
    srv, service, port = await build_server(store, "127.0.0.1:0", ServerOptions(max_stream_age_s=0.3))
    yield port
    await srv.stop(1)
    service.close()


async def test_a_stream_past_its_age_ends_cleanly_after_acking_what_it_took(store, short_lived_streams, unique_id):
    channel, call = await open_stream(short_lived_streams, f"agent-{unique_id}")
    first = pb.Batch(seq=1, batch_id=f"agent-{unique_id}/boot/1", requests=[record(unique_id, 0)])
    await call.write(pb.AgentMessage(batch=first))
    assert (await call.read()).ack.seq == 1
    assert await call.read() is grpc.aio.EOF  # at its age (0.3 s ± 10 %) the collector ends the stream, unasked
    assert await call.code() == grpc.StatusCode.OK
    await channel.close()
    assert count(store, "requests", unique_id) == 1


async def test_an_agent_rides_through_many_stream_ends_storing_everything_once(store, short_lived_streams,
                                                                                unique_id, tmp_path, caplog):
    caplog.set_level("INFO")
    shipper = shipper_for(f"127.0.0.1:{short_lived_streams}", f"agent-{unique_id}", tmp_path, max_items=5)
    shipper.start()
    for i in range(300):
        shipper.add(record(unique_id, i))
        await asyncio.sleep(0.005)  # ~1.5 s of records, across several streams
    await shipper.close(timeout_s=20)
    assert shipper.pending == 0
    stored = store.query("SELECT count(), uniqExact(request_id) FROM {db}.requests WHERE run_id = {r:String}",
                         {"r": unique_id}).result_rows[0]
    assert stored == (300, 300)
    ended = [r for r in caplog.records if r.name == "siliconbench.agent.uplink" and "ended the stream" in r.getMessage()]
    assert len(ended) >= 3
    assert not [r for r in caplog.records if r.name.startswith("siliconbench.agent.") and r.levelname == "WARNING"]


async def round_robin_proxy(ports: list[int]) -> tuple[asyncio.Server, int]:
    """Hands each new TCP connection to the next port in turn, as a ClusterIP Service spreads connections."""
    turn = itertools.count()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", ports[next(turn) % len(ports)])
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True)

    proxy = await asyncio.start_server(handle, "127.0.0.1", 0)
    return proxy, proxy.sockets[0].getsockname()[1]


async def test_ending_streams_spreads_one_agent_over_two_replicas_and_stores_everything_once(store, unique_id,
                                                                                             tmp_path):
    replicas = [await build_server(store, "127.0.0.1:0", ServerOptions(max_stream_age_s=0.3)) for _ in range(2)]
    proxy, port = await round_robin_proxy([p for _, _, p in replicas])
    try:
        shipper = shipper_for(f"127.0.0.1:{port}", f"agent-{unique_id}", tmp_path, max_items=5)
        shipper.start()
        for i in range(200):
            shipper.add(record(unique_id, i))
            await asyncio.sleep(0.005)
        await shipper.close(timeout_s=20)
    finally:
        proxy.close()
        for srv, service, _ in replicas:
            await srv.stop(1)
            service.close()
    assert all(service.batches_stored > 0 for _, service, _ in replicas)
    stored = store.query("SELECT count(), uniqExact(request_id) FROM {db}.requests WHERE run_id = {r:String}",
                         {"r": unique_id}).result_rows[0]
    assert stored == (200, 200)


async def test_a_refused_agent_is_told_why_however_its_first_write_races_the_refusal(guarded_server, tmp_path, caplog):
    """The shipper waits for the collector's accept before writing, so a wrong token always surfaces as
    UNAUTHENTICATED: a write racing the abort would read INTERNAL (grpc/grpc#36066). Many short streams
    make the race likely on every run; before the handshake some of them logged 'stream broke with INTERNAL'."""
    caplog.set_level("WARNING", logger="siliconbench.agent.uplink")
    for attempt in range(20):
        shipper = shipper_for(f"127.0.0.1:{guarded_server}", f"agent-refused-{attempt}", tmp_path / str(attempt),
                              token="not-in-the-file")
        shipper.start()
        shipper.add(record(f"refused-{attempt}", 0))
        with pytest.raises(DeliveryIncomplete):
            await shipper.close(timeout_s=0.5)
    refusals = [r.getMessage() for r in caplog.records if r.name == "siliconbench.agent.uplink"
                and "retrying in" in r.getMessage()]
    assert refusals and all("refused this agent's token" in m for m in refusals), refusals
