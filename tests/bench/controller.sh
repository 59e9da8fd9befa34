#!/usr/bin/env bash
# Benchmark: the controller's Job creation against the raw API-server create rate, same run.
#
# Usage: tests/bench/controller.sh
#   BENCH_RUNS=1000      runs created at once (and raw Jobs, for the baseline)
#   BENCH_TOTAL=10000    runs in the cluster when the controller's RSS is read at the end
#
# Starts its own test environment (tests/cluster/up.sh: real kube-apiserver, etcd, ...),
# builds release binaries, applies the CRD, runs tests/e2e/src/bin/bench-controller.rs and
# stops the environment again. Runs are suspended, so no training runs: this measures the
# controller. Prints time to all Jobs, p50/p99 run -> Job latency, the rate ratio and RSS.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

cargo build --release --locked -p kubetrain -p kubetrain-e2e --bins >&2
trap 'tests/cluster/down.sh' EXIT
envfile=$(tests/cluster/up.sh | tail -n 1)
# shellcheck source=/dev/null
. "$envfile"
kubectl apply --server-side -f deploy/crds/trainingruns.kubetrain.dev.yaml >&2
kubectl wait --for=condition=Established crd/trainingruns.kubetrain.dev --timeout=60s >&2
KUBETRAIN_BIN=${CARGO_TARGET_DIR:-$root/target}/release/kubetrain \
  "${CARGO_TARGET_DIR:-$root/target}/release/bench-controller"
