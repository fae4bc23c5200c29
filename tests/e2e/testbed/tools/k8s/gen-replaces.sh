#!/usr/bin/env bash
# Regenerate the staging replace set of this consumer module from the go.mod that the
# Go module proxy serves for k8s.io/kubernetes@$1. Run inside tests/e2e/testbed/tools/k8s.
# Usage: bash gen-replaces.sh v1.35.4
set -euo pipefail
K8S="${1:?usage: gen-replaces.sh v1.35.N}"
STAGING="v0.${K8S#v1.}"                               # v1.35.4 -> v0.35.4
GOMOD=$(go mod download -json "k8s.io/kubernetes@${K8S}" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
grep -m1 "^go " "$GOMOD" >&2 || true                  # upstream go directive
# non-staging replaces upstream would need copying by hand; expect none:
if grep '=>' "$GOMOD" | grep -v 'staging/src' >&2; then
  echo "gen-replaces: upstream has non-staging replace directives (listed above); copy them by hand" >&2
fi
for m in $(sed -n 's|^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*|\1|p' "$GOMOD"); do
  go mod edit "-replace=${m}=${m}@${STAGING}"
done
go mod edit "-require=k8s.io/kubernetes@${K8S}"
