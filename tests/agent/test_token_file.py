"""The agent's token from a file (a projected service-account token the kubelet rotates) is read
again for each stream, so a rotated token is presented on the next reconnect without a restart."""

from __future__ import annotations

import pytest

from siliconbench.collector.auth import TokenFile
from siliconbench.collector.server import ServerOptions, build_server
from siliconbench.core.errors import ConfigError
from siliconbench.core.settings import BearerToken
from tests.collector.test_service import count, record, shipper_for


def test_a_token_file_is_read_again_once_it_changed(tmp_path):
    path = tmp_path / "token"
    path.write_text("first-token\n")
    token = BearerToken(path=path)
    assert token.metadata() == (("authorization", "Bearer first-token"),)
    path.write_text("second-token-rotated\n")
    assert token.metadata() == (("authorization", "Bearer second-token-rotated"),)


def test_a_token_file_caught_empty_or_gone_keeps_the_token_read_before(tmp_path):
    path = tmp_path / "token"
    path.write_text("first-token\n")
    token = BearerToken(path=path)
    path.write_text("")
    assert token.metadata() == (("authorization", "Bearer first-token"),)
    path.unlink()
    assert token.metadata() == (("authorization", "Bearer first-token"),)


def test_a_missing_token_file_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read the token file .* \(SILICONBENCH_AGENT_TOKEN_FILE\): No such file"):
        BearerToken(path=tmp_path / "absent")


@pytest.fixture
async def port(store, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("the-rotated-token\n")
    srv, service, bound = await build_server(store, "127.0.0.1:0", ServerOptions(tokens=TokenFile(tokens)))
    yield bound
    await srv.stop(1)
    service.close()


async def test_the_shipper_presents_the_rotated_token_when_it_reconnects(store, port, unique_id, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("the-expired-token\n")
    shipper = shipper_for(f"127.0.0.1:{port}", f"agent-{unique_id}", tmp_path / "spool",
                          token=BearerToken(path=token_file))
    shipper.start()
    shipper.add(record(unique_id, 0))
    token_file.write_text("the-rotated-token\n")  # as the kubelet does: the refused stream's retry presents it
    await shipper.close(timeout_s=60)
    assert count(store, "requests", unique_id) == 1
