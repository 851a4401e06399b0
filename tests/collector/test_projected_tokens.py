"""Agents on Kubernetes prove their node with their pod's projected service-account token: the
collector verifies it against the cluster's keys (a JWKS) and lets the agent write only as the node
the token names. Tokens here are signed by a test key, in the claim layout the API server issues."""

from __future__ import annotations

import json
import time
import uuid

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from siliconbench.collector.auth import Credential, NotAuthenticated, TokenFile
from siliconbench.collector.grants import StreamGrant
from siliconbench.collector.identity import Identities
from siliconbench.collector.options import serve_config
from siliconbench.collector.projected import ProjectedTokens
from siliconbench.collector.server import ServerOptions, build_server
from siliconbench.collector.serving import authenticator
from siliconbench.core.errors import ConfigError
from siliconbench.core.rpc import pb_grpc
from siliconbench.core.wire import pb
from tests.collector.test_roles import bearer
from tests.collector.test_service import count, open_stream, record

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF"
AUDIENCE = "siliconbench"
SUBJECT = "system:serviceaccount:siliconbench:siliconbench-agent"


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def jwks(tmp_path, rsa_key, ec_key):
    """The cluster's keys as `kubectl get --raw /openid/v1/jwks` shows them."""
    keys = [dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), kid="rsa-1", use="sig",
                 alg="RS256"),
            dict(json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), kid="ec-1", use="sig",
                 alg="ES256")]
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    return path


def token(key, node: str, *, kid: str = "rsa-1", alg: str = "RS256", **overrides) -> str:
    """A projected token as the kubelet mounts it (claims of Kubernetes 1.30+, node info included)."""
    now = int(time.time())
    claims = {"aud": [AUDIENCE], "exp": now + 3600, "iat": now, "nbf": now, "iss": ISSUER, "sub": SUBJECT,
              "jti": str(uuid.uuid4()),
              "kubernetes.io": {"namespace": "siliconbench",
                                "node": {"name": node, "uid": str(uuid.uuid4())},
                                "pod": {"name": f"siliconbench-agent-{node[-5:]}", "uid": str(uuid.uuid4())},
                                "serviceaccount": {"name": "siliconbench-agent", "uid": str(uuid.uuid4())}}}
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def verifier(jwks) -> ProjectedTokens:
    return ProjectedTokens(str(jwks), ISSUER, AUDIENCE, "siliconbench:siliconbench-agent")


def test_a_valid_token_names_its_node(verifier, rsa_key, ec_key):
    assert verifier.node_of(token(rsa_key, "ip-10-0-1-1.ec2.internal")) == "ip-10-0-1-1.ec2.internal"
    assert verifier.node_of(token(ec_key, "ip-10-0-1-2.ec2.internal", kid="ec-1", alg="ES256")) == \
        "ip-10-0-1-2.ec2.internal"


@pytest.mark.parametrize(("claims", "reason"), [
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200, "nbf": int(time.time()) - 7200}, "expired"),
    ({"aud": ["sts.amazonaws.com"]}, "not for audience 'siliconbench'"),
    ({"iss": "https://oidc.eks.us-east-1.amazonaws.com/id/OTHER"}, "not issued by"),
    ({"sub": "system:serviceaccount:default:default"}, "not the agents' service account"),
    ({"kubernetes.io": {"namespace": "siliconbench", "serviceaccount": {"name": "siliconbench-agent"}}},
     "names no node"),
    ({"kubernetes.io": "siliconbench"}, "names no node"),
    ({"kubernetes.io": {"node": {"name": 7}}}, "names no node"),
])
def test_a_token_that_does_not_hold_is_refused_in_one_line(verifier, rsa_key, claims, reason):
    with pytest.raises(NotAuthenticated) as refused:
        verifier.node_of(token(rsa_key, "ip-10-0-1-1.ec2.internal", **claims))
    assert reason in str(refused.value) and "\n" not in str(refused.value)


def test_a_token_signed_by_another_key_is_refused(verifier):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(NotAuthenticated, match="signature does not verify"):
        verifier.node_of(token(stranger, "ip-10-0-1-1.ec2.internal"))
    with pytest.raises(NotAuthenticated, match="not among the cluster's keys"):
        verifier.node_of(token(stranger, "ip-10-0-1-1.ec2.internal", kid="other"))


def test_a_node_bound_credential_writes_only_as_that_node_under_that_node_name():
    bound = Credential(agent_id="ip-10-0-1-1", node="ip-10-0-1-1")
    assert bound.refusal("ip-10-0-1-1", "ip-10-0-1-1") is None
    assert "may write only as agent 'ip-10-0-1-1'" in bound.refusal("ip-10-0-1-2", "ip-10-0-1-1")
    assert "issued on node 'ip-10-0-1-1', not 'ip-10-0-1-2'" in bound.refusal("ip-10-0-1-1", "ip-10-0-1-2")


def test_a_token_that_is_no_jwt_is_refused(verifier):
    with pytest.raises(NotAuthenticated, match="not valid"):
        verifier.node_of("not-a-jwt")


def test_keys_added_to_the_jwks_file_are_used_without_a_restart(verifier, jwks):
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = json.loads(jwks.read_text())["keys"]
    keys.append(dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rotated.public_key())), kid="rsa-2"))
    jwks.write_text(json.dumps({"keys": keys}))
    assert verifier.node_of(token(rotated, "ip-10-0-1-3.ec2.internal", kid="rsa-2")) == "ip-10-0-1-3.ec2.internal"


@pytest.fixture
async def port(store, tmp_path, verifier):
    tokens = tmp_path / "tokens"
    tokens.write_text("shared-secret\nops-secret operator\n")
    identities = Identities(TokenFile(tokens), verifier)
    srv, service, bound = await build_server(store, "127.0.0.1:0", ServerOptions(tokens=identities))
    yield bound
    await srv.stop(1)
    service.close()


async def write_one(port: int, agent_id: str, credential: str, run_id: str) -> pb.CollectorMessage:
    """Open a stream as `agent_id` and send one batch; the collector's first reply."""
    channel, call = await open_stream(port, agent_id, metadata=bearer(credential))
    await call.write(pb.AgentMessage(batch=pb.Batch(seq=1, batch_id=f"{run_id}/1", requests=[record(run_id, 0)])))
    try:
        return await call.read()
    finally:
        await channel.close()


def nodes(store, agent_id: str) -> int:
    """Hellos recorded for `agent_id` (a refused stream records none)."""
    return store.query("SELECT count() FROM {db}.nodes WHERE agent_id = {a:String}", {"a": agent_id}).result_rows[0][0]


async def refused_hello(port: int, agent_id: str, credential: str) -> grpc.aio.AioRpcError:
    """How the collector ends a stream whose Hello the credential may not send (nothing more is
    written: a write would race the refusal, grpc/grpc#36066)."""
    channel, call = await open_stream(port, agent_id, metadata=bearer(credential))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    await channel.close()
    return refused.value


async def test_an_agent_writes_as_the_node_its_token_names(store, port, rsa_key, unique_id):
    node = f"ip-10-0-1-1-{unique_id}"
    assert (await write_one(port, node, token(rsa_key, node), unique_id)).ack.seq == 1
    assert count(store, "requests", unique_id) == 1


async def test_a_token_of_one_node_cannot_write_as_another(store, port, rsa_key, unique_id):
    refused = await refused_hello(port, f"node-b-{unique_id}", token(rsa_key, f"node-a-{unique_id}"))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"may write only as agent 'node-a-{unique_id}'" in refused.details()
    assert nodes(store, f"node-b-{unique_id}") == 0


async def test_an_expired_token_cannot_open_a_stream(port, rsa_key):
    old = int(time.time()) - 7200
    expired = token(rsa_key, "ip-10-0-1-1.ec2.internal", exp=old + 3600, iat=old, nbf=old)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = pb_grpc.TelemetryStub(channel).Stream(metadata=bearer(expired))
        await call.done_writing()  # refused before anything is read (a write would race the refusal)
        assert await call.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "service-account token has expired" in await call.details()


async def test_a_shared_token_writes_nothing_beside_service_account_tokens(store, port, unique_id):
    refused = await refused_hello(port, f"node-{unique_id}", "shared-secret")
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "bound to no agent id writes nothing" in refused.details()
    assert nodes(store, f"node-{unique_id}") == 0


def test_serve_checks_service_account_tokens_once_given_the_clusters_keys(jwks, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("ops-secret operator\n")
    config = serve_config(agent_jwks=str(jwks), agent_token_issuer=ISSUER,
                          agent_service_account="siliconbench:siliconbench-agent", agent_tokens_file=tokens)
    identities = authenticator(config)
    assert isinstance(identities, Identities) and identities.projected.subject == SUBJECT
    assert authenticator(serve_config(agent_tokens_file=tokens)).shown == f"agent tokens from {tokens}"


def test_the_clusters_keys_without_an_issuer_are_refused(jwks):
    with pytest.raises(ConfigError, match="--agent-jwks needs --agent-token-issuer"):
        serve_config(agent_jwks=str(jwks))


def test_a_stream_whose_token_expires_is_told_so_at_its_next_check(verifier, rsa_key, tmp_path):
    """A projected token lives an hour; a stream opened with it ends once it expires (the agent
    reconnects with the token the kubelet rotated in)."""
    node = "ip-10-0-1-1.ec2.internal"
    past = int(time.time()) - 7200
    grant = StreamGrant(Identities(None, verifier), bearer(token(rsa_key, node, exp=past + 3600, iat=past, nbf=past)),
                        pb.Hello(agent_id=node, node_name=node), store=None)
    assert "service-account token has expired" in grant.revoked()
    live = StreamGrant(Identities(None, verifier), bearer(token(rsa_key, node)), pb.Hello(agent_id=node, node_name=node),
                       store=None)
    assert live.revoked() is None


def test_a_wrong_static_token_is_named_as_one_beside_service_account_tokens(verifier):
    with pytest.raises(NotAuthenticated, match="missing or wrong bearer token: agents present their service-account"):
        Identities(None, verifier).check(bearer("guessed-secret"))
