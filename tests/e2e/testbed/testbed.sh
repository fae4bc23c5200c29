#!/usr/bin/env bash
# Local e2e test stack on 127.0.0.1: etcd + kube-apiserver (RBAC, TokenRequest) +
# kube-controller-manager (node-less controllers only) + livekit-server.
#
# Usage:
#   testbed.sh start  STATE_DIR   start everything (idempotent; builds binaries if missing)
#   testbed.sh stop   STATE_DIR   stop every recorded PID (TERM, wait, KILL); keeps data/logs
#   testbed.sh status STATE_DIR   per-component state; exit 0 only if all healthy
#   testbed.sh env    STATE_DIR   print STATE_DIR/testbed.env (use: eval "$(testbed.sh env DIR)")
#   testbed.sh sa-kubeconfig STATE_DIR NAMESPACE SA OUT
#                                 TokenRequest (24h) for an existing SA -> kubeconfig OUT (CA embedded)
#   testbed.sh clean  STATE_DIR   stop, then delete the testbed's files in STATE_DIR
#   (sa-kubeconfig also accepts `sa-kubeconfig NAMESPACE SA OUT` when CAST_TB_STATE is set.)
#
# Ports (chosen at the first start, saved to STATE_DIR/ports.env and reused afterwards):
#   CAST_TB_PORT_BASE   default "auto" = first block of free ports from 24000 upwards (step 10);
#                       or a number, e.g. 24000
#   CAST_TB_ETCD_PORT (base+0), CAST_TB_ETCD_PEER_PORT (base+1), CAST_TB_APISERVER_PORT (base+2),
#   CAST_TB_KCM_PORT (base+3), CAST_TB_LIVEKIT_PORT (base+4, HTTP/WS), CAST_TB_LIVEKIT_UDP_PORT (base+5),
#   CAST_TB_LIVEKIT_TCP_PORT (default 0 = ICE/TCP off: livekit binds that one on ALL interfaces)
# Other env:
#   TESTBED_BIN                 use binaries from this dir instead of build.sh's cache dir
#   CAST_TB_LIVEKIT_API_KEY     default devkey
#   CAST_TB_LIVEKIT_API_SECRET  default a fixed 40-char test secret
#   CAST_TB_NO_KCM=1            do not run kube-controller-manager
#   CAST_TB_TIMEOUT             readiness timeout per component in seconds (default 120)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPONENTS=(etcd kube-apiserver kube-controller-manager livekit-server)

say() { echo "[testbed $(date -u +%H:%M:%S)] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2; exit 2; }

CMD="${1:-}"; shift || true
case "$CMD" in
  start|stop|status|env|clean) [ $# -eq 1 ] || usage; STATE_ARG="$1" ;;
  sa-kubeconfig)
    if [ $# -eq 4 ]; then STATE_ARG="$1"; shift
    elif [ $# -eq 3 ] && [ -n "${CAST_TB_STATE:-}" ]; then STATE_ARG="$CAST_TB_STATE"
    else usage; fi ;;
  *) usage ;;
esac
mkdir -p "$STATE_ARG"
S="$(cd "$STATE_ARG" && pwd)"
P="$S/pki"; LOGS="$S/logs"; PIDS="$S/pids"
KCFG="$S/admin.kubeconfig"; ENVF="$S/testbed.env"; PORTSF="$S/ports.env"
TIMEOUT="${CAST_TB_TIMEOUT:-120}"

# ---------------------------------------------------------------- ports
port_free() { # port_free PORT -> 0 if both TCP and UDP 127.0.0.1:PORT can be bound
  python3 - "$1" <<'EOF'
import socket, sys
p = int(sys.argv[1])
for t in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, t)
    if t == socket.SOCK_STREAM:
        # As the servers do: connections of a stopped testbed in TIME_WAIT must not block it.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
EOF
}

resolve_ports() {
  if [ -f "$PORTSF" ]; then
    # shellcheck disable=SC1090
    . "$PORTSF"
    return
  fi
  local base="${CAST_TB_PORT_BASE:-auto}"
  if [ "$base" = auto ]; then
    base=24000
    while :; do
      local ok=1 i
      for i in 0 1 2 3 4 5; do port_free $((base + i)) || { ok=0; break; }; done
      [ $ok = 1 ] && break
      base=$((base + 10))
      [ $base -lt 30000 ] || die "no free port block found in 24000-30000"
    done
  fi
  ETCD_PORT="${CAST_TB_ETCD_PORT:-$((base + 0))}"
  ETCD_PEER_PORT="${CAST_TB_ETCD_PEER_PORT:-$((base + 1))}"
  APISERVER_PORT="${CAST_TB_APISERVER_PORT:-$((base + 2))}"
  KCM_PORT="${CAST_TB_KCM_PORT:-$((base + 3))}"
  LIVEKIT_PORT="${CAST_TB_LIVEKIT_PORT:-$((base + 4))}"
  LIVEKIT_UDP_PORT="${CAST_TB_LIVEKIT_UDP_PORT:-$((base + 5))}"
  LIVEKIT_TCP_PORT="${CAST_TB_LIVEKIT_TCP_PORT:-0}"
}

save_ports() {
  cat >"$PORTSF" <<EOF
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
APISERVER_PORT=$APISERVER_PORT
KCM_PORT=$KCM_PORT
LIVEKIT_PORT=$LIVEKIT_PORT
LIVEKIT_UDP_PORT=$LIVEKIT_UDP_PORT
LIVEKIT_TCP_PORT=$LIVEKIT_TCP_PORT
EOF
}

# ---------------------------------------------------------------- binaries
resolve_bin() {
  if [ -n "${TESTBED_BIN:-}" ]; then
    BIN="$TESTBED_BIN"
  elif BIN="$("$HERE/build.sh" --print-bin-dir 2>/dev/null)"; then
    :
  else
    say "testbed binaries missing; running build.sh (a cold build takes a while)"
    BIN="$("$HERE/build.sh" | tail -n 1)" || die "build.sh failed"
  fi
  local b
  for b in etcd kube-apiserver kube-controller-manager kubectl livekit-server; do
    [ -x "$BIN/$b" ] || die "missing binary $BIN/$b (run $HERE/build.sh)"
  done
}

# ---------------------------------------------------------------- processes
pid_of() { [ -f "$PIDS/$1.pid" ] && cat "$PIDS/$1.pid" || true; }

# alive NAME -> 0 if the recorded PID runs the binary NAME (guards against PID reuse)
alive() {
  local pid; pid="$(pid_of "$1")"
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  local exe; exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
  [ "${exe##*/}" = "$1" ] || [ "${exe##*/}" = "$1 (deleted)" ]
}

launch() { # launch NAME ARGS... ; binary from $BIN, output to logs/NAME.log
  local name="$1"; shift
  : >"$LOGS/$name.log"
  setsid "$BIN/$name" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PIDS/$name.pid"
  # setsid forks only if it is a process-group leader; make sure we recorded the binary's PID.
  local i
  for i in $(seq 1 50); do
    alive "$name" && return 0
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  alive "$name" || fail "$name" "process $pid exited right after launch"
}

stop_one() {
  local name="$1" pid
  pid="$(pid_of "$name")"
  [ -n "$pid" ] || return 0
  if alive "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do
      alive "$name" || break
      sleep 0.1
    done
    if alive "$name"; then
      say "$name (pid $pid) did not exit after TERM+10s; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 1 50); do alive "$name" || break; sleep 0.1; done
    fi
    say "stopped $name (pid $pid)"
  fi
  rm -f "$PIDS/$name.pid"
}

stop_all() {
  local i
  for (( i=${#COMPONENTS[@]}-1; i>=0; i-- )); do stop_one "${COMPONENTS[$i]}"; done
}

fail() { # fail NAME MESSAGE: tail the log, stop everything started, exit 1
  say "ERROR: $1: $2"
  if [ -f "$LOGS/$1.log" ]; then
    echo "----- last 40 lines of $LOGS/$1.log -----" >&2
    tail -n 40 "$LOGS/$1.log" >&2
    echo "-----" >&2
  fi
  say "stopping the components that were started"
  stop_all
  exit 1
}

# ---------------------------------------------------------------- health checks
h_etcd() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; }
h_kube-apiserver() {
  [ "$(curl -fsS --max-time 3 --cacert "$P/ca.crt" "https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null)" = ok ]
}
h_kube-controller-manager() {
  [ "$(curl -fsS --max-time 3 -k "https://127.0.0.1:$KCM_PORT/healthz" 2>/dev/null)" = ok ]
}
h_livekit-server() { [ "$(curl -fsS --max-time 2 "http://127.0.0.1:$LIVEKIT_PORT/" 2>/dev/null)" = OK ]; }

healthy() { alive "$1" && "h_$1"; }

wait_ready() { # wait_ready NAME
  local name="$1" t0; t0=$(date +%s)
  while ! "h_$name"; do
    alive "$name" || fail "$name" "process exited before becoming ready"
    [ $(( $(date +%s) - t0 )) -lt "$TIMEOUT" ] || fail "$name" "not ready after ${TIMEOUT}s"
    sleep 0.3
  done
  say "$name ready (pid $(pid_of "$name"), $(( $(date +%s) - t0 ))s)"
}

wanted() { # components that should run
  local c
  for c in "${COMPONENTS[@]}"; do
    [ "$c" = kube-controller-manager ] && [ "${CAST_TB_NO_KCM:-0}" = 1 ] && continue
    echo "$c"
  done
}

all_healthy() { local c; for c in $(wanted); do healthy "$c" || return 1; done; }

# ---------------------------------------------------------------- PKI / config files
make_pki() {
  [ -f "$P/sa.key" ] && [ -f "$P/admin.crt" ] && [ -f "$P/apiserver.crt" ] && return 0
  say "creating PKI in $P"
  rm -rf "$P"; mkdir -p "$P"
  (
    cd "$P"
    exec >"$LOGS/pki.log" 2>&1
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -keyout ca.key -out ca.crt -subj "/CN=testbed-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
    cat >apiserver.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
    openssl req -new -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver"
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
      -extfile apiserver.ext -out apiserver.crt
    cat >client.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
    openssl req -new -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=testbed-admin"
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
      -extfile client.ext -out admin.crt
    openssl genrsa -out sa.key 2048
    openssl verify -CAfile ca.crt apiserver.crt admin.crt
  ) || { cat "$LOGS/pki.log" >&2; die "PKI generation failed (openssl)"; }
  chmod 600 "$P"/*.key
}

write_files() {
  cat >"$KCFG" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $P/ca.crt
users:
- name: admin
  user:
    client-certificate: $P/admin.crt
    client-key: $P/admin.key
contexts:
- name: admin
  context:
    cluster: testbed
    user: admin
current-context: admin
EOF
  chmod 600 "$KCFG"
  LK_KEY="${CAST_TB_LIVEKIT_API_KEY:-devkey}"
  LK_SECRET="${CAST_TB_LIVEKIT_API_SECRET:-cast-testbed-livekit-secret-0123456789ab}"
  [ ${#LK_SECRET} -ge 32 ] || die "CAST_TB_LIVEKIT_API_SECRET must be at least 32 characters"
  cat >"$S/livekit.yaml" <<EOF
port: $LIVEKIT_PORT
bind_addresses: ["127.0.0.1"]
keys:
  $LK_KEY: $LK_SECRET
logging:
  level: info
rtc:
  tcp_port: $LIVEKIT_TCP_PORT
  udp_port: $LIVEKIT_UDP_PORT
  node_ip: 127.0.0.1
  use_external_ip: false
  enable_loopback_candidate: true
  ips:
    includes: [127.0.0.1/32]
  # nothing listens there; only keeps the public STUN defaults out of the join response
  stun_servers: ["127.0.0.1:3478"]
EOF
  chmod 600 "$S/livekit.yaml"
  cat >"$ENVF" <<EOF
export KUBECONFIG='$KCFG'
export LIVEKIT_URL='ws://127.0.0.1:$LIVEKIT_PORT'
export LIVEKIT_API_KEY='$LK_KEY'
export LIVEKIT_API_SECRET='$LK_SECRET'
export TESTBED_BIN='$BIN'
export TESTBED_STATE='$S'
export TESTBED_APISERVER='https://127.0.0.1:$APISERVER_PORT'
export TESTBED_CA='$P/ca.crt'
export TESTBED_ETCD='http://127.0.0.1:$ETCD_PORT'
export PATH='$BIN':"\$PATH"
EOF
}

# ---------------------------------------------------------------- start
start_etcd() {
  launch etcd --name testbed --data-dir "$S/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "testbed=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level warn
  wait_ready etcd
}

start_apiserver() {
  launch kube-apiserver \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
    --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
    --cert-dir="$S/apiserver-certs" \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
    --client-ca-file="$P/ca.crt" \
    --authorization-mode=RBAC \
    --service-account-issuer="https://127.0.0.1:$APISERVER_PORT" \
    --service-account-key-file="$P/sa.key" \
    --service-account-signing-key-file="$P/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true --profiling=false --v=1
  wait_ready kube-apiserver
}

start_kcm() {
  launch kube-controller-manager \
    --kubeconfig="$KCFG" \
    --authentication-kubeconfig="$KCFG" --authorization-kubeconfig="$KCFG" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
    --controllers=namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller,clusterrole-aggregation-controller,root-ca-certificate-publisher-controller \
    --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
    --authentication-skip-lookup=true \
    --cert-dir="$S/kcm-certs" --profiling=false --v=1
  wait_ready kube-controller-manager
}

start_livekit() {
  launch livekit-server --config "$S/livekit.yaml"
  wait_ready livekit-server
}

cmd_start() {
  resolve_ports
  if [ -f "$PIDS/etcd.pid" ] || [ -f "$PIDS/kube-apiserver.pid" ] || [ -f "$PIDS/livekit-server.pid" ]; then
    if all_healthy; then
      say "already running and healthy ($S)"
      return 0
    fi
    say "testbed in $S is partly running or unhealthy; restarting it"
    stop_all
  fi
  resolve_bin
  mkdir -p "$LOGS" "$PIDS" "$S/kcm-certs" "$S/apiserver-certs"
  local p
  for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$LIVEKIT_PORT" "$LIVEKIT_UDP_PORT"; do
    port_free "$p" || die "port 127.0.0.1:$p is in use (by another testbed?). Set CAST_TB_PORT_BASE=<n>|auto or CAST_TB_*_PORT (see $0 header); for an existing STATE_DIR delete $PORTSF"
  done
  if [ "$LIVEKIT_TCP_PORT" != 0 ]; then
    port_free "$LIVEKIT_TCP_PORT" || die "port 127.0.0.1:$LIVEKIT_TCP_PORT is in use; set CAST_TB_LIVEKIT_TCP_PORT"
  fi
  if [ "${CAST_TB_NO_KCM:-0}" != 1 ]; then
    port_free "$KCM_PORT" || die "port 127.0.0.1:$KCM_PORT is in use; set CAST_TB_KCM_PORT or CAST_TB_PORT_BASE"
  fi
  save_ports
  make_pki
  write_files
  start_etcd
  start_apiserver
  [ "${CAST_TB_NO_KCM:-0}" = 1 ] || start_kcm
  start_livekit
  say "testbed up: source $ENVF"
}

cmd_status() {
  [ -f "$PORTSF" ] || { echo "not started ($S has no ports.env)"; return 1; }
  . "$PORTSF"
  local c rc=0
  for c in $(wanted); do
    if ! alive "$c"; then echo "$c: stopped"; rc=1
    elif "h_$c"; then echo "$c: running, healthy (pid $(pid_of "$c"))"
    else echo "$c: running, NOT healthy (pid $(pid_of "$c"))"; rc=1; fi
  done
  return $rc
}

cmd_sa_kubeconfig() {
  local ns="$1" sa="$2" out="$3" token
  [ -f "$PORTSF" ] && [ -f "$KCFG" ] || die "testbed in $S not started"
  . "$PORTSF"
  resolve_bin
  token="$("$BIN/kubectl" --kubeconfig="$KCFG" -n "$ns" create token "$sa" --duration=24h)" \
    || die "kubectl create token -n $ns $sa failed (does the ServiceAccount exist?)"
  rm -f "$out"
  local k=("$BIN/kubectl" --kubeconfig="$out")
  "${k[@]}" config set-cluster testbed --server="https://127.0.0.1:$APISERVER_PORT" \
    --certificate-authority="$P/ca.crt" --embed-certs=true >/dev/null
  "${k[@]}" config set-credentials "$ns-$sa" --token="$token" >/dev/null
  "${k[@]}" config set-context "$ns-$sa" --cluster=testbed --user="$ns-$sa" --namespace="$ns" >/dev/null
  "${k[@]}" config use-context "$ns-$sa" >/dev/null
  chmod 600 "$out"
  say "wrote $out (system:serviceaccount:$ns:$sa, token valid 24h)"
}

case "$CMD" in
  start) cmd_start ;;
  stop)
    stop_all
    # a pid file of an unknown name (older layout) would otherwise be left behind
    [ -d "$PIDS" ] && for f in "$PIDS"/*.pid; do [ -e "$f" ] || continue; say "leaving unknown pid file $f"; done
    true ;;
  status) cmd_status ;;
  env) [ -f "$ENVF" ] || die "$ENVF missing (run: $0 start $S)"; cat "$ENVF" ;;
  sa-kubeconfig) cmd_sa_kubeconfig "$@" ;;
  clean)
    stop_all
    rm -rf "$P" "$LOGS" "$PIDS" "$S/etcd-data" "$S/apiserver-certs" "$S/kcm-certs" \
      "$KCFG" "$ENVF" "$PORTSF" "$S/livekit.yaml"
    rmdir "$S" 2>/dev/null || true
    say "cleaned $S" ;;
esac
