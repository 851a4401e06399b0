"""Every overlay renders, passes the Kubernetes schemas (strict), and follows siliconbench's own policies."""

from __future__ import annotations

import json
import subprocess

import jsonschema
import pytest
import yaml

from tests.deploy import policy
from tests.deploy.conftest import (HERE, K8S_VERSION, OVERLAYS, SCENARIO_OVERLAYS, docs_of, render,
                                   require_tool)

EXPECTED_INSTANCE_TYPE = {
    "overlays/a-p5-scout": "p5.48xlarge",
    "overlays/a-p5-maverick": "p5.48xlarge",
    "overlays/b-p4d-scout": "p4d.24xlarge",
    "overlays/c-g6e-scout": "g6e.48xlarge",
    "overlays/d-trn2-scout": "trn2.48xlarge",
    "overlays/d-trn2-maverick": "trn2.48xlarge",
    "overlays/e-inf2-scout": "inf2.48xlarge",
}


def _kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def _vllm_container(docs: list[dict]) -> dict:
    (deployment,) = [d for d in _kind(docs, "Deployment") if d["metadata"]["name"].startswith("vllm")]
    return deployment["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_passes_strict_kubernetes_schemas(overlay, kubectl):
    validator = require_tool("kubernetes-validate", "kubernetes-validate")
    proc = subprocess.run([validator, "--strict", "-k", K8S_VERSION, "-"], input=render(overlay),
                          capture_output=True, text=True, timeout=120)
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("ERROR")]
    assert proc.returncode == 0 and not errors, proc.stdout + proc.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_follows_policies(overlay, kubectl):
    assert policy.violations(docs_of(render(overlay))) == []


def test_every_scenario_of_the_reference_report_has_an_overlay():
    assert set(SCENARIO_OVERLAYS) == set(EXPECTED_INSTANCE_TYPE)


@pytest.mark.parametrize("overlay", SCENARIO_OVERLAYS)
def test_scenario_selects_its_instance_type_for_agent_and_vllm(overlay, kubectl):
    docs = docs_of(render(overlay))
    expected = EXPECTED_INSTANCE_TYPE[overlay]
    assert policy.instance_types_of_agents(docs) == [expected]
    (deployment,) = [d for d in _kind(docs, "Deployment") if d["metadata"]["name"].startswith("vllm")]
    terms = deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert {"key": policy.INSTANCE_TYPE_LABEL, "operator": "In", "values": [expected]} in terms[0]["matchExpressions"]


@pytest.mark.parametrize("overlay", SCENARIO_OVERLAYS)
def test_agent_reaches_the_node_local_vllm_service_of_its_scenario(overlay, kubectl):
    docs = docs_of(render(overlay))
    (service,) = _kind(docs, "Service")
    assert service["spec"]["internalTrafficPolicy"] == "Local"
    (agent,) = _kind(docs, "DaemonSet")
    env = {e["name"]: e.get("value") for e in agent["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SILICONBENCH_TARGET"] == f"http://{service['metadata']['name']}.siliconbench-node.svc.cluster.local:8000"
    assert service["spec"]["selector"]["siliconbench.io/scenario"] == overlay.removeprefix("overlays/")


@pytest.mark.parametrize("overlay,flags", [
    ("overlays/a-p5-scout", ["meta-llama/Llama-4-Scout-17B-16E", "--tensor-parallel-size", "8",
                             "--max-model-len", "1000000", "--dtype", "bfloat16"]),
    ("overlays/b-p4d-scout", ["meta-llama/Llama-4-Scout-17B-16E", "--tensor-parallel-size", "8",
                              "--max-model-len", "1000000", "--dtype", "bfloat16"]),
    ("overlays/c-g6e-scout", ["meta-llama/Llama-4-Scout-17B-16E", "--tensor-parallel-size", "8",
                              "--max-model-len", "1000000", "--dtype", "bfloat16"]),
    ("overlays/d-trn2-scout", ["meta-llama/Llama-4-Scout-17B-16E", "--tensor-parallel-size", "16",
                               "--max-model-len", "1000000"]),
])
def test_vllm_runs_the_reference_report_flags(overlay, flags, kubectl):
    container = _vllm_container(docs_of(render(overlay)))
    assert container["command"] == ["vllm", "serve"]
    assert container["args"][: len(flags)] == flags


@pytest.mark.parametrize("overlay,resource,count", [
    ("overlays/a-p5-scout", "nvidia.com/gpu", "8"), ("overlays/d-trn2-scout", "aws.amazon.com/neuron", "16"),
    ("overlays/e-inf2-scout", "aws.amazon.com/neuron", "12"), ("overlays/d-trn2-maverick", "aws.amazon.com/neuron", "16"),
])
def test_vllm_claims_all_accelerators_of_the_node(overlay, resource, count, kubectl):
    container = _vllm_container(docs_of(render(overlay)))
    assert container["resources"]["limits"][resource] == count


def test_secrets_in_the_repository_are_placeholders_only(kubectl):
    secrets = _kind(docs_of(render("central")), "Secret")
    assert {s["metadata"]["name"] for s in secrets} == {"siliconbench-tokens", "siliconbench-clickhouse"}
    import base64
    for secret in secrets:
        for value in secret["data"].values():
            assert base64.b64decode(value).decode().startswith("CHANGE-ME"), secret["metadata"]["name"]


def test_collector_rebalances_through_a_max_stream_age_and_has_grpc_probes(kubectl):
    (collector,) = [d for d in _kind(docs_of(render("central")), "Deployment")]
    container = collector["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(env["SILICONBENCH_MAX_STREAM_AGE_S"]) > 0
    assert container["readinessProbe"]["grpc"]["port"] == 50051


@pytest.mark.parametrize("overlay", SCENARIO_OVERLAYS)
def test_each_agent_presents_its_own_pods_token_and_the_collector_checks_it(overlay, kubectl):
    """No shared secret writes as a node: every agent presents its pod's projected service-account token
    (audience-bound, short-lived, re-read), and the collector verifies it for that audience and account."""
    (daemonset,) = _kind(docs_of(render(overlay)), "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    (agent,) = [c for c in pod["containers"] if c["name"] == "agent"]
    env = {e["name"]: e for e in agent["env"]}
    assert "SILICONBENCH_AGENT_TOKEN" not in env
    token_path = env["SILICONBENCH_AGENT_TOKEN_FILE"]["value"]
    mounts = {m["mountPath"]: m["name"] for m in agent["volumeMounts"]}
    directory, _, file_name = token_path.rpartition("/")
    (volume,) = [v for v in pod["volumes"] if v["name"] == mounts[directory]]
    (source,) = volume["projected"]["sources"]
    projected = source["serviceAccountToken"]
    assert projected["path"] == file_name and 600 <= projected["expirationSeconds"] <= 3600

    (collector,) = _kind(docs_of(render("central")), "Deployment")
    collector_env = {e["name"]: e.get("value") for e in collector["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert collector_env["SILICONBENCH_AGENT_TOKEN_AUDIENCE"] == projected["audience"]
    assert collector_env["SILICONBENCH_AGENT_SERVICE_ACCOUNT"] == \
        f"{daemonset['metadata']['namespace']}:{pod['serviceAccountName']}"
    assert collector_env["SILICONBENCH_AGENT_JWKS"].startswith(collector_env["SILICONBENCH_AGENT_TOKEN_ISSUER"])


def test_the_collectors_tokens_file_holds_no_agent_token(kubectl):
    import base64
    (secret,) = [s for s in _kind(docs_of(render("central")), "Secret") if s["metadata"]["name"] == "siliconbench-tokens"]
    lines = [line.split() for line in base64.b64decode(secret["data"]["tokens"]).decode().splitlines() if line.strip()]
    assert lines and all(fields[1:] == ["operator"] for fields in lines)


# --- the deliberately broken manifest must be caught ---------------------------------------------------

def test_broken_agent_manifest_is_caught_by_the_policies():
    docs = docs_of((HERE / "fixtures" / "broken-agent.yaml").read_text())
    found = "\n".join(policy.violations(docs))
    for expected in (
        "requests nvidia.com/gpu",              # claims an accelerator
        "limits aws.amazon.com/neuron",
        "lacks toleration {key: aws.amazon.com/neuron",
        "does not select nodes by node.kubernetes.io/instance-type",
        "readOnlyRootFilesystem must be true",
        "seccompProfile must be RuntimeDefault",
        "is privileged",
        "image 'registry.example.com/siliconbench/agent:latest' is not pinned",
        "image 'busybox' is not pinned",
        "SILICONBENCH_NODE_NAME from the downward API",
        "collector needs >= 2 replicas",
        "no PodDisruptionBudget selects the collector",
    ):
        assert expected in found, f"policy missed: {expected}\n--- found:\n{found}"


def test_broken_agent_manifest_is_caught_by_strict_schema_validation():
    validator = require_tool("kubernetes-validate", "kubernetes-validate")
    text = (HERE / "fixtures" / "broken-agent.yaml").read_text()
    proc = subprocess.run([validator, "--strict", "-k", K8S_VERSION, "-"], input=text,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "tolerationSeconds" in proc.stdout + proc.stderr     # wrong type: a string
    assert "nodeSelecter" in proc.stdout + proc.stderr          # unknown field, caught by --strict


# --- ClickHouseInstallation: a schema of our own for the fields we use ------------------------------

def _chi_schema() -> dict:
    return json.loads((HERE / "schemas" / "clickhouseinstallation.schema.json").read_text())


def test_clickhouse_installation_matches_our_schema(kubectl):
    (chi,) = [d for d in docs_of(render("overlays/central-clickhouse-cluster"))
              if d["kind"] == "ClickHouseInstallation"]
    jsonschema.validate(chi, _chi_schema(), cls=jsonschema.Draft202012Validator)


def test_cluster_path_replaces_the_single_node_clickhouse(kubectl):
    docs = docs_of(render("overlays/central-clickhouse-cluster"))
    assert not _kind(docs, "StatefulSet")
    assert not [s for s in _kind(docs, "Service") if s["metadata"]["name"].startswith("clickhouse")]
    (chi,) = _kind(docs, "ClickHouseInstallation")
    assert chi["spec"]["templates"]["serviceTemplates"][0]["generateName"] == "clickhouse"


def test_broken_clickhouse_installation_is_caught_by_our_schema():
    broken = yaml.safe_load((HERE / "fixtures" / "broken-chi.yaml").read_text())
    errors = sorted(jsonschema.Draft202012Validator(_chi_schema()).iter_errors(broken), key=str)
    messages = "\n".join(e.message for e in errors)
    assert "'replicasCount' is a required property" in messages or "replicaCount" in messages
    assert "is not of type 'integer'" in messages                       # shardsCount: "1"
    assert any("k8s_secret_password" in e.message for e in errors)      # removed in operator 0.27.4
