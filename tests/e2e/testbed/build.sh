#!/usr/bin/env bash
# Build the e2e testbed binaries (kube-apiserver, kube-controller-manager, kubectl, etcd,
# helm, livekit-server) from the pinned Go modules under tools/, through the Go module proxy.
#
# Binaries go to ${CAST_TESTBED_CACHE:-$HOME/.cache/cast-gatekeeper/testbed}/<key>/bin, where
# <key> hashes tools/*/go.mod, tools/*/go.sum and this script. Each binary is built only when
# missing (built to a temp name, then renamed). GOMODCACHE/GOCACHE stay at Go's defaults.
#
# Usage:
#   build.sh                 build what is missing; last stdout line = the bin dir
#   build.sh --print-bin-dir print the bin dir (builds nothing; exits 1 if incomplete)
#   build.sh --check         exit 0 if every binary is present, 1 otherwise
#   build.sh --prune         delete cached bin dirs of other keys (older tool versions)
# Env:
#   CAST_TESTBED_CACHE       cache root (default ~/.cache/cast-gatekeeper/testbed)
#   CAST_TESTBED_JOBS        2 (default) = the k8s builds and the etcd/helm/livekit builds
#                            run side by side (peak ~2.2 GB RAM in total); 1 = one at a time
#   CAST_TESTBED_TIMEV=1     wrap each go build in /usr/bin/time -v (peak RSS into the log)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$HERE/tools"

K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.17
HELM_VERSION=v3.21.4
LIVEKIT_VERSION=v1.13.5
BINARIES=(kube-apiserver kube-controller-manager kubectl etcd helm livekit-server)

export GOTOOLCHAIN=local
export GOFLAGS="-trimpath"
export CGO_ENABLED=0

cache_key() {
  (cd "$HERE" && cat tools/k8s/go.mod tools/k8s/go.sum tools/etcd/go.mod tools/etcd/go.sum \
      tools/helm/go.mod tools/helm/go.sum tools/livekit/go.mod tools/livekit/go.sum build.sh) \
    | sha256sum | cut -c1-16
}
CACHE_ROOT="${CAST_TESTBED_CACHE:-$HOME/.cache/cast-gatekeeper/testbed}"
KEY="$(cache_key)"
BIN="$CACHE_ROOT/$KEY/bin"
LOGDIR="$CACHE_ROOT/$KEY/logs"

all_present() {
  local b
  for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
}

case "${1:-}" in
  --print-bin-dir) echo "$BIN"; all_present; exit $? ;;
  --check) all_present; exit $? ;;
  --prune)
    for d in "$CACHE_ROOT"/*/; do
      [ -d "$d" ] && [ "$(basename "$d")" != "$KEY" ] || continue
      echo "removing $d" >&2; rm -rf "$d"
    done
    exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-bin-dir|--check|--prune]" >&2; exit 2 ;;
esac

ts() { date -u +%H:%M:%S; }
log() { echo "[testbed $(ts)] $*" >&2; }

command -v go >/dev/null || { log "ERROR: go not found on PATH"; exit 1; }
mkdir -p "$BIN" "$LOGDIR"

# One builder at a time per cache dir (CI and `make up` may race).
exec 9>"$CACHE_ROOT/$KEY/.build.lock"
if ! flock -n 9; then
  log "another build.sh holds $CACHE_ROOT/$KEY/.build.lock; waiting"
  flock 9
fi

TIMEV=()
if [ "${CAST_TESTBED_TIMEV:-0}" = 1 ] && [ -x /usr/bin/time ]; then TIMEV=(/usr/bin/time -v); fi

K8S_MINOR="$(echo "$K8S_VERSION" | cut -d. -f2)"
BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
K8S_LDFLAGS="-s -w \
 -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=${K8S_MINOR} \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/component-base/version.buildDate=${BUILD_DATE} \
 -X k8s.io/client-go/pkg/version.gitVersion=${K8S_VERSION} \
 -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=${K8S_MINOR} \
 -X k8s.io/client-go/pkg/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.buildDate=${BUILD_DATE}"

# build_one NAME LABEL MODULE_DIR PKG LDFLAGS [TAGS]
build_one() {
  local name="$1" label="$2" dir="$3" pkg="$4" ldflags="$5" tags="${6:-}"
  if [ -x "$BIN/$name" ]; then
    log "$name ($label) already built"
    return 0
  fi
  local tmp="$BIN/.$name.tmp.$$" lf="$LOGDIR/$name.log" t0 t1
  t0=$(date +%s)
  log "building $name ($label)…"
  local args=(build -o "$tmp" -ldflags "$ldflags")
  [ -n "$tags" ] && args+=(-tags "$tags")
  if (cd "$TOOLS/$dir" && "${TIMEV[@]}" go "${args[@]}" "$pkg") >"$lf" 2>&1; then
    mv -f "$tmp" "$BIN/$name"
    t1=$(date +%s)
    local rss=""
    if [ ${#TIMEV[@]} -gt 0 ]; then
      rss=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$lf" | tail -n1)
      [ -n "$rss" ] && rss=", peak RSS $((rss / 1024)) MiB"
    fi
    log "building $name ($label)… done in $((t1 - t0))s$rss"
  else
    rm -f "$tmp"
    log "ERROR: step 'build $name ($label)' failed after $(( $(date +%s) - t0 ))s; last lines of $lf:"
    tail -n 40 "$lf" >&2
    return 1
  fi
}

build_k8s() {
  build_one kube-apiserver "k8s $K8S_VERSION" k8s k8s.io/kubernetes/cmd/kube-apiserver "$K8S_LDFLAGS" selinux,notest &&
  build_one kube-controller-manager "k8s $K8S_VERSION" k8s k8s.io/kubernetes/cmd/kube-controller-manager "$K8S_LDFLAGS" selinux,notest &&
  build_one kubectl "k8s $K8S_VERSION" k8s k8s.io/kubernetes/cmd/kubectl "$K8S_LDFLAGS" selinux,notest
}
build_small() {
  build_one etcd "etcd $ETCD_VERSION" etcd go.etcd.io/etcd/server/v3 "-s -w" &&
  build_one helm "helm $HELM_VERSION" helm helm.sh/helm/v3/cmd/helm \
    "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean" &&
  build_one livekit-server "livekit-server $LIVEKIT_VERSION" livekit github.com/livekit/livekit-server/cmd/server "-s -w"
}

T0=$(date +%s)
if all_present; then
  log "all binaries present in $BIN"
else
  log "go $(go env GOVERSION), cache key $KEY, GOMODCACHE=$(go env GOMODCACHE), GOCACHE=$(go env GOCACHE)"
  if [ "${CAST_TESTBED_JOBS:-2}" -ge 2 ]; then
    build_k8s & pk=$!
    build_small & ps=$!
    rc=0
    wait "$pk" || rc=1
    wait "$ps" || rc=1
    [ "$rc" = 0 ] || { log "ERROR: testbed build failed (see messages above; logs in $LOGDIR)"; exit 1; }
  else
    build_k8s || { log "ERROR: testbed build failed (logs in $LOGDIR)"; exit 1; }
    build_small || { log "ERROR: testbed build failed (logs in $LOGDIR)"; exit 1; }
  fi
  log "all binaries built in $(( $(date +%s) - T0 ))s"
fi
echo "$BIN"
