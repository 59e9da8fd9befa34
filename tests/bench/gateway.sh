#!/usr/bin/env bash
# Benchmark: the gateway's seed API against the peer (FastAPI + Celery + Redis in
# ../shared/peers/seed-celery), same run, same machine, one load generator for both.
#
# Usage: tests/bench/gateway.sh [PEER_DIR]
#   PEER_DIR            the peer's source (default: ../shared/peers/seed-celery next to the repo)
#   BENCH_SECONDS=5     duration of each status-read round (BENCH_ROUNDS=3 interleaved rounds)
#   BENCH_CONCURRENCY=8 status-read clients
#   BENCH_SUBMITS=200   timed sequential submits per side (after BENCH_WARMUP=10 untimed ones)
#   BENCH_AUTH=1        also measure a second gateway with --auth kubernetes (0 to skip)
#   BENCH_JSON=FILE     also write the figures as JSON
#
# Starts its own test environment (tests/cluster/up.sh: real kube-apiserver, etcd, S3, process
# node), builds release binaries, applies the CRD, starts `kubetrain controller` (so runs
# train and finish) and `kubetrain gateway --auth none` on loopback (the throughput figure has
# no auth; BENCH_AUTH=1 adds a gateway with --auth kubernetes, a ServiceAccount token and its
# cached TokenReview/SubjectAccessReview). The seed route stages inline data to the test S3
# bucket (s3://$KUBETRAIN_TEST_BUCKET/bench-staging/) and its runs read it with the Secret
# `s3` (made from the environment's AWS_* keys) named by --storage-secret.
# The peer is copied to a temporary directory, its requirements installed from PyPI into a
# venv cached under ~/.cache/kubetrain-bench (redis-server from apt if missing), its ports
# moved to free ones in the copy, started with its run.sh and stopped with its stop.sh.
# Then tests/e2e/src/bin/bench-gateway.rs measures both; everything started is stopped by pid.
# Submit latency is measured for kubetrain twice: with the controller running (each run
# submitted gets a Job and a trainer process on this machine while the next is timed) and then
# paused (SIGSTOP: the gateway, auth, S3 and the API server only). Each measurement starts
# after the previous one's tasks have finished.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
peer_src=${1:-$root/../shared/peers/seed-celery}
[[ -f $peer_src/run.sh ]] || { echo "no peer at $peer_src (pass its directory)" >&2; exit 1; }
peer_src=$(cd "$peer_src" && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
log() { printf '[bench] %s\n' "$*" >&2; }

cargo build --release --locked -p kubetrain -p kubetrain-e2e --bins >&2
export KUBETRAIN_BIN=$target/release/kubetrain

work=$(mktemp -d "${TMPDIR:-/tmp}/kubetrain-bench-gateway.XXXXXX")
pids=()
envstate=
peer=
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n $peer ]]; then
    "$peer/stop.sh" >&2 || true
  fi
  if [[ -n $envstate ]]; then
    tests/cluster/down.sh "$envstate" || true
  fi
  log "logs and peer copy kept in $work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url what
  for _ in $(seq 300); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  log "$2 did not answer $1 within 30 s"
  return 1
}

# --- the peer -------------------------------------------------------------------------------
if ! command -v redis-server >/dev/null; then
  log "installing redis-server (apt)"
  apt-get install -y redis-server >&2
fi
peer=$work/peer
cp -r "$peer_src" "$peer"
rm -rf "$peer/.venv" "$peer/run" "$peer/models" "$peer/results"
req_hash=$(sha256sum "$peer/requirements.txt" | cut -c1-16)
venv=${XDG_CACHE_HOME:-$HOME/.cache}/kubetrain-bench/peer-venv-$req_hash
if [[ ! -f $venv/.installed ]]; then
  log "installing the peer's requirements from PyPI into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$peer/requirements.txt" >&2
  touch "$venv/.installed"
fi
ln -s "$venv" "$peer/.venv"
# Free ports instead of the fixed 6390/8090, so a peer another session runs is left alone.
redis_port=$(free_port)
peer_port=$(free_port)
sed -i -e "s/^REDIS_PORT=.*/REDIS_PORT=$redis_port/" -e "s/^API_PORT=.*/API_PORT=$peer_port/" "$peer/run.sh"
export SEED_REDIS_URL=redis://127.0.0.1:$redis_port
"$peer/run.sh" >&2

# --- the control plane, controller and gateways ---------------------------------------------
envfile=$(tests/cluster/up.sh | tail -n 1)
# shellcheck source=/dev/null
. "$envfile"
envstate=$KUBETRAIN_TESTENV
kubectl apply --server-side -f deploy/crds/trainingruns.kubetrain.dev.yaml >&2
kubectl wait --for=condition=Established crd/trainingruns.kubetrain.dev --timeout=60s >&2
ns=bench-gateway
kubectl create namespace "$ns" >&2
kubectl -n "$ns" create secret generic s3 \
  --from-literal=AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
  --from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" >&2
for _ in $(seq 300); do
  kubectl -n "$ns" get serviceaccount default >/dev/null 2>&1 && break
  sleep 0.2
done

"$KUBETRAIN_BIN" controller --trainer-image ghcr.io/kubetrain/kubetrain:bench \
  --listen "127.0.0.1:$(free_port)" 2>"$work/controller.log" &
pids+=($!)
export BENCH_CONTROLLER_PID=$!

gateway_flags=(--namespace "$ns" --staging-uri "s3://$KUBETRAIN_TEST_BUCKET/bench-staging/"
  --storage-secret s3)
gw_port=$(free_port)
"$KUBETRAIN_BIN" gateway --auth none --listen "127.0.0.1:$gw_port" "${gateway_flags[@]}" \
  2>"$work/gateway.log" &
pids+=($!)
export BENCH_GATEWAY_PID=$!
wait_http "http://127.0.0.1:$gw_port/readyz" "kubetrain gateway (--auth none; log $work/gateway.log)"
export BENCH_KUBETRAIN=http://127.0.0.1:$gw_port

if [[ ${BENCH_AUTH:-1} != 0 ]]; then
  kubectl -n "$ns" create serviceaccount bench-app >&2
  kubectl -n "$ns" create role trainingruns-user --verb=get,list,watch,create,patch,delete \
    --resource=trainingruns.kubetrain.dev >&2
  kubectl -n "$ns" create rolebinding trainingruns-user --role=trainingruns-user \
    --serviceaccount="$ns:bench-app" >&2
  kubectl -n "$ns" create token bench-app --duration=1h >"$work/token"
  gwa_port=$(free_port)
  "$KUBETRAIN_BIN" gateway --auth kubernetes --listen "127.0.0.1:$gwa_port" "${gateway_flags[@]}" \
    2>"$work/gateway-auth.log" &
  pids+=($!)
  wait_http "http://127.0.0.1:$gwa_port/readyz" "kubetrain gateway (--auth kubernetes; log $work/gateway-auth.log)"
  export BENCH_KUBETRAIN_AUTH=http://127.0.0.1:$gwa_port BENCH_TOKEN_FILE=$work/token
fi

export BENCH_PEER=http://127.0.0.1:$peer_port BENCH_NAMESPACE=$ns
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$target/release/bench-gateway"
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
