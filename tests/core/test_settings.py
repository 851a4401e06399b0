"""The environment: read in one settings module per package, TLS and token variables shared in core."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from siliconbench.core.errors import ConfigError
from siliconbench.core.settings import ClientTls, agent_token, client_tls

SRC = Path(__file__).resolve().parents[2] / "src" / "siliconbench"
# Modules that hand the environment on unchanged (not configuration they read).
PASS_THROUGH = {
    "agent/workers.py",  # its worker processes inherit the agent's environment
    "collector/validate.py",  # its read commands run as children, with the store password added to the environment
}


def test_no_tls_variable_means_plaintext():
    tls = client_tls({"SILICONBENCH_TLS_CA": ""})
    assert tls == ClientTls() and tls.credentials() is None


def test_tls_variables_name_their_files():
    tls = client_tls({"SILICONBENCH_TLS_CA": "/ca.pem", "SILICONBENCH_TLS_CERT": "/c.pem", "SILICONBENCH_TLS_KEY": "/k.pem"})
    assert (tls.enabled, tls.ca, tls.cert, tls.key) == (True, Path("/ca.pem"), Path("/c.pem"), Path("/k.pem"))


def test_a_client_certificate_without_its_key_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"^environment: --tls-cert and --tls-key \(SILICONBENCH_TLS_CERT/_KEY\)"):
        client_tls({"SILICONBENCH_TLS_CERT": "/c.pem"})


def test_an_empty_token_is_no_token():
    assert agent_token({"SILICONBENCH_AGENT_TOKEN": ""}) is None
    assert agent_token({"SILICONBENCH_AGENT_TOKEN": "s3cret"}) == "s3cret"


def test_only_settings_modules_read_the_environment():
    readers = sorted(str(path.relative_to(SRC)) for path in SRC.rglob("*.py")
                     if re.search(r"os\.environ|os\.getenv|envvar=\"", path.read_text(encoding="utf-8")))
    assert [r for r in readers if not r.endswith("settings.py") and r not in PASS_THROUGH] == []


def test_the_collector_and_its_clients_state_the_certificate_and_key_rule_alike():
    from siliconbench.collector.options import ServeConfig

    said = []
    for build in (lambda: ClientTls(cert=Path("c.pem")), lambda: ServeConfig(tls_key=Path("k.pem"))):
        with pytest.raises(ValidationError) as refused:
            build()
        said.append(refused.value.errors()[0]["msg"])
    assert said[0] == said[1] == "--tls-cert and --tls-key (SILICONBENCH_TLS_CERT/_KEY) go together: a certificate needs its key"


def test_unreadable_tls_files_are_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=f"cannot read TLS file {tmp_path}/ca.pem: No such file"):
        ClientTls(ca=tmp_path / "ca.pem").credentials()
