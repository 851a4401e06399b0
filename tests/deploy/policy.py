"""siliconbench's own rules for rendered manifests, beyond what the Kubernetes schemas check.

`violations(docs)` returns one readable line per broken rule, naming the object; an empty list means the
manifests follow the rules. The rules (docs/deploy.md "Validation"):
- the agent requests no accelerator (nvidia.com/gpu, aws.amazon.com/neuron*): it would take devices from vLLM;
- the agent tolerates the nvidia.com/gpu and aws.amazon.com/neuron NoSchedule taints, and no blanket toleration;
- the agent selects nodes by node.kubernetes.io/instance-type, with real values (not the base placeholder);
- every pod sets a seccomp profile, and every container sets allowPrivilegeEscalation and capabilities, and
  (apart from vLLM, which writes its caches) a read-only root filesystem;
- privileged containers only in the agent of Neuron scenarios;
- every image is pinned: a registry path with a version tag or a digest, never `latest` nor untagged;
- collectors run >= 2 replicas and are covered by a PodDisruptionBudget.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ACCELERATOR_RESOURCES = ("nvidia.com/gpu", "aws.amazon.com/neuron", "aws.amazon.com/neuroncore",
                         "aws.amazon.com/neurondevice")
REQUIRED_TOLERATIONS = ("nvidia.com/gpu", "aws.amazon.com/neuron")
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
PLACEHOLDER = "set-by-overlay"
WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob")
# tag: a version-like tag (starts with a digit or 'v' + digit); digest: sha256
_PINNED = re.compile(r"^[a-z0-9.\-/:_]+(:(v?\d[\w.\-]*)|@sha256:[0-9a-f]{64})$")


def _name(doc: dict) -> str:
    meta = doc.get("metadata", {})
    return f"{doc.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


def _pod_spec(doc: dict) -> dict | None:
    spec = doc.get("spec", {})
    if doc.get("kind") == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if doc.get("kind") in WORKLOAD_KINDS:
        return spec.get("template", {}).get("spec")
    return None


def _is_agent(doc: dict) -> bool:
    labels = doc.get("metadata", {}).get("labels", {})
    return doc.get("kind") == "DaemonSet" and labels.get("app.kubernetes.io/name") == "siliconbench-agent"


def _is_vllm(doc: dict) -> bool:
    return doc.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/name") == "vllm"


def _containers(pod: dict) -> list[dict]:
    return list(pod.get("initContainers", [])) + list(pod.get("containers", []))


def image_violations(doc: dict, pod: dict) -> list[str]:
    out = []
    for c in _containers(pod):
        image = c.get("image", "")
        if image.endswith(":latest") or not _PINNED.match(image):
            out.append(f"{_name(doc)}: container {c.get('name')} image {image!r} is not pinned "
                       "(needs a version tag or an @sha256 digest)")
    return out


def security_violations(doc: dict, pod: dict) -> list[str]:
    out = []
    pod_sc = pod.get("securityContext", {})
    if pod_sc.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
        out.append(f"{_name(doc)}: pod securityContext.seccompProfile must be RuntimeDefault")
    for c in _containers(pod):
        sc = c.get("securityContext")
        where = f"{_name(doc)}: container {c.get('name')}"
        if not sc:
            out.append(f"{where} has no securityContext")
            continue
        if "allowPrivilegeEscalation" not in sc:
            out.append(f"{where}: securityContext.allowPrivilegeEscalation is not set")
        if sc.get("privileged") and not (_is_agent(doc) and _neuron_agent(doc)):
            out.append(f"{where} is privileged (allowed only for the agent on Neuron nodes)")
        if not _is_vllm(doc):
            if sc.get("readOnlyRootFilesystem") is not True:
                out.append(f"{where}: securityContext.readOnlyRootFilesystem must be true")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                out.append(f"{where}: securityContext.capabilities.drop must contain ALL")
    return out


def _neuron_agent(doc: dict) -> bool:
    return any(_instance_type_is_neuron(v) for v in _instance_types(doc))


def _instance_type_is_neuron(value: str) -> bool:
    return value.startswith(("trn", "inf"))


def _instance_types(doc: dict) -> list[str]:
    pod = _pod_spec(doc) or {}
    terms = (pod.get("affinity", {}).get("nodeAffinity", {})
             .get("requiredDuringSchedulingIgnoredDuringExecution", {}).get("nodeSelectorTerms", []))
    values: list[str] = []
    for term in terms:
        for expr in term.get("matchExpressions", []):
            if expr.get("key") == INSTANCE_TYPE_LABEL and expr.get("operator") == "In":
                values += expr.get("values", [])
    values += [v for k, v in pod.get("nodeSelector", {}).items() if k == INSTANCE_TYPE_LABEL]
    return values


def agent_violations(doc: dict, pod: dict) -> list[str]:
    out = []
    for c in _containers(pod):
        res = c.get("resources", {})
        for section in ("requests", "limits"):
            for key in res.get(section, {}):
                if key in ACCELERATOR_RESOURCES:
                    out.append(f"{_name(doc)}: agent container {c.get('name')} {section} {key}; "
                               "the agent must not claim accelerators (vLLM needs all of them)")
        if c in pod.get("containers", []) and not res.get("requests"):
            out.append(f"{_name(doc)}: agent container {c.get('name')} has no resource requests")
    tolerated = {t.get("key"): t for t in pod.get("tolerations", [])}
    for key in REQUIRED_TOLERATIONS:
        t = tolerated.get(key)
        if not t or t.get("effect") != "NoSchedule" or t.get("operator") != "Exists":
            out.append(f"{_name(doc)}: agent lacks toleration {{key: {key}, operator: Exists, effect: NoSchedule}}")
    if None in tolerated:
        out.append(f"{_name(doc)}: agent has a blanket toleration (no key); tolerate only the accelerator taints")
    types = _instance_types(doc)
    if not types:
        out.append(f"{_name(doc)}: agent does not select nodes by {INSTANCE_TYPE_LABEL}")
    elif PLACEHOLDER in types:
        out.append(f"{_name(doc)}: agent instance-type affinity still holds the base placeholder")
    env = {e.get("name"): e for c in pod.get("containers", []) for e in c.get("env", [])}
    node_name = env.get("SILICONBENCH_NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {})
    if node_name.get("fieldPath") != "spec.nodeName":
        out.append(f"{_name(doc)}: agent must get SILICONBENCH_NODE_NAME from the downward API (spec.nodeName)")
    for key in ("SILICONBENCH_TARGET", "SILICONBENCH_SCENARIO"):
        if env.get(key, {}).get("value", PLACEHOLDER) == PLACEHOLDER:
            out.append(f"{_name(doc)}: agent env {key} is not set by the overlay")
    return out


def collector_violations(docs: list[dict]) -> list[str]:
    out = []
    pdb_selectors = [d.get("spec", {}).get("selector", {}).get("matchLabels", {})
                     for d in docs if d.get("kind") == "PodDisruptionBudget"]
    for doc in docs:
        labels = doc.get("metadata", {}).get("labels", {})
        if doc.get("kind") != "Deployment" or labels.get("app.kubernetes.io/name") != "siliconbench-collector":
            continue
        if doc.get("spec", {}).get("replicas", 1) < 2:
            out.append(f"{_name(doc)}: collector needs >= 2 replicas")
        pod_labels = doc["spec"]["template"]["metadata"].get("labels", {})
        if not any(sel and all(pod_labels.get(k) == v for k, v in sel.items()) for sel in pdb_selectors):
            out.append(f"{_name(doc)}: no PodDisruptionBudget selects the collector")
    return out


def violations(docs: Iterable[dict]) -> list[str]:
    docs = [d for d in docs if d]
    out: list[str] = []
    for doc in docs:
        pod = _pod_spec(doc)
        if pod is None:
            continue
        out += image_violations(doc, pod)
        out += security_violations(doc, pod)
        if _is_agent(doc):
            out += agent_violations(doc, pod)
        elif _is_vllm(doc) and not _instance_types(doc):
            out.append(f"{_name(doc)}: vLLM does not select nodes by {INSTANCE_TYPE_LABEL}")
    out += collector_violations(docs)
    return out


def instance_types_of_agents(docs: Iterable[dict]) -> list[str]:
    """The instance types the agent DaemonSets in `docs` select (for per-overlay checks)."""
    return [t for d in docs if d and _is_agent(d) for t in _instance_types(d)]
