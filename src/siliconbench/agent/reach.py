"""Whether the collector answers, asked before a run's first request: a run whose collector is down would
otherwise measure for minutes and fail only at the end, when it cannot deliver."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from siliconbench.agent.errors import CollectorUnreachable

COLLECTOR_WAIT_S = 10.0  # a collector started beside the agent (`make demo`, a script) has this long to come up


async def check_collector(address: str, credentials: grpc.ChannelCredentials | None,
                          wait_s: float = COLLECTOR_WAIT_S) -> None:
    """Return once the collector at `address` reports SERVING (the standard health service, which needs no
    token); raise CollectorUnreachable with the reason and the fix when it does not within `wait_s`."""
    channel = (grpc.aio.secure_channel(address, credentials) if credentials is not None
               else grpc.aio.insecure_channel(address))
    async with channel:
        try:
            answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                     timeout=wait_s, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            why = (f"did not answer within {wait_s:.0f} s" if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                   else f"answered {exc.code().name}: {exc.details()}")
            raise CollectorUnreachable(
                f"the collector at {address} {why}: start it (`siliconbench-collector serve`), fix --collector, "
                "or pass --spool-only to run now and deliver when it is back") from None
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        state = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
        raise CollectorUnreachable(f"the collector at {address} is {state}, not serving: wait for it or check its log")
