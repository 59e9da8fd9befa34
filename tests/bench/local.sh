#!/usr/bin/env bash
# Benchmark: `kubetrain local` against the seed design it replaces (FastAPI + Celery + Redis +
# scikit-learn, ../shared/peers/seed-celery), on this machine, in the same run.
#
# Usage: tests/bench/local.sh              (from anywhere; needs python3, cargo, apt for redis)
#   BENCH_JOBS=20        training jobs submitted at once to each side
#   BENCH_ROUNDS=3       rounds per contender, interleaved; the median is reported
#   BENCH_POLL=0.05      status poll interval in seconds (the peer's bench.py default)
#   SEED_CELERY_DIR=...  the peer (default: ../shared/peers/seed-celery beside the repo)
#
# What it does: installs redis-server if missing, makes a venv under .cache/seed-celery-venv
# with the peer's pinned requirements, builds kubetrain in release mode, copies the peer to a
# temporary directory and starts it (redis, `celery -c 2`, uvicorn), starts
# `kubetrain local --workers 2` on a temporary data directory, and writes
# make_classification(n_samples=20000, n_features=20, random_state=0) once as CSV into
# kubetrain's local storage. Then, per round and contender, it submits the jobs at once
# (one client thread per job) and polls `GET /status/{id}` until every job is done:
#   - kubetrain: `POST /v1/namespaces/default/trainingruns` on that CSV (validationFraction
#     0.2, seed 42, maxIterations 1000, l2Penalty 1 = 1/C), one trainer thread per worker;
#   - peer "ref": `POST /train/` with {"dataset": "synthetic", ...}: the worker generates the
#     same data in memory (the peer's own bench.py variant, its fastest path);
#   - peer "csv": `POST /train/` with the same CSV path (pandas.read_csv in the worker).
#   - kubetrain-nocache: a second `kubetrain local --no-dataset-cache`, the same runs, each
#     trainer reading, hashing and parsing the CSV itself. The first contender keeps parsed
#     datasets in <data-dir>/cache/datasets (its default), filled by the warm-up job, so its
#     rounds show a sweep on data trained on before.
# It prints wall time from the first submit until all jobs are complete, for each, and the
# ratio of each kubetrain contender to the fastest peer variant (target <= 0.5). Everything it started is stopped by
# PID on exit (the peer through its own stop.sh, which stops exactly its pidfiles).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
peer_src=${SEED_CELERY_DIR:-$root/../shared/peers/seed-celery}
venv=$root/.cache/seed-celery-venv
jobs=${BENCH_JOBS:-20}
rounds=${BENCH_ROUNDS:-3}
poll=${BENCH_POLL:-0.05}
kt_port=${BENCH_KUBETRAIN_PORT:-18480}

[ -d "$peer_src" ] || { echo "bench: no peer at $peer_src (set SEED_CELERY_DIR)" >&2; exit 1; }
if ! command -v redis-server >/dev/null; then
    echo "bench: installing redis-server" >&2
    apt-get install -y redis-server >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y redis-server >/dev/null; }
fi
if ! "$venv/bin/python" -c 'import celery, fastapi, uvicorn, sklearn, pandas, requests, kombu.transport.redis' 2>/dev/null; then
    echo "bench: creating $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$peer_src/requirements.txt"
fi
echo "bench: building kubetrain (release)" >&2
cargo build --quiet --release -p kubetrain --manifest-path "$root/Cargo.toml"
kubetrain=$root/target/release/kubetrain

work=$(mktemp -d /tmp/kubetrain-bench-local.XXXXXX)
kt_pid=""
kt2_pid=""
cleanup() {
    for pid in $kt_pid $kt2_pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [ -x "$work/peer/stop.sh" ]; then "$work/peer/stop.sh" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# The peer, in its own copy, with the cached venv.
cp -r "$peer_src" "$work/peer"
rm -rf "$work/peer/run" "$work/peer/models" "$work/peer/results" "$work/peer/.venv"
ln -s "$venv" "$work/peer/.venv"
"$work/peer/run.sh" >&2

# kubetrain local, 2 workers, its storage under the data directory.
mkdir -p "$work/kt/storage/data"
csv=$work/kt/storage/data/synthetic_20000x20.csv
"$venv/bin/python" - "$csv" <<'PY'
import sys
import numpy as np
from sklearn.datasets import make_classification
X, y = make_classification(n_samples=20000, n_features=20, random_state=0)
header = ",".join([f"f{i}" for i in range(X.shape[1])] + ["label"])
np.savetxt(sys.argv[1], np.column_stack([X, y]), delimiter=",", header=header, comments="",
           fmt=["%.17g"] * X.shape[1] + ["%d"])
PY
kt2_port=$((kt_port + 1))
RUST_LOG=warn "$kubetrain" local --listen "127.0.0.1:$kt_port" --data-dir "$work/kt" --workers 2 \
    >"$work/kubetrain-local.log" 2>&1 </dev/null &
kt_pid=$!
RUST_LOG=warn "$kubetrain" local --listen "127.0.0.1:$kt2_port" --data-dir "$work/kt2" --workers 2 \
    --no-dataset-cache >"$work/kubetrain-local-nocache.log" 2>&1 </dev/null &
kt2_pid=$!
for port in "$kt_port" "$kt2_port"; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "kubetrain local on $port not ready; see logs:" >&2; cat "$work"/kubetrain-local*.log >&2; exit 1; }
done

"$venv/bin/python" - "http://127.0.0.1:$kt_port,http://127.0.0.1:$kt2_port" "http://127.0.0.1:8090" "$csv" "$work/kt/storage/models" \
    "$jobs" "$rounds" "$poll" <<'PY'
import json, os, statistics, sys, time
from concurrent.futures import ThreadPoolExecutor
import requests

kt_urls, peer, csv, models, jobs, rounds, poll = sys.argv[1:]
kt_cached, kt_nocache = kt_urls.split(",")
kt_side = {"kubetrain": kt_cached, "kubetrain-nocache": kt_nocache}
jobs, rounds, poll = int(jobs), int(rounds), float(poll)

def kt_body(i, r):
    return {
        "apiVersion": "kubetrain.dev/v1alpha1", "kind": "TrainingRun",
        "metadata": {"name": f"bench-{r}-{i}"},
        "spec": {
            "algorithm": {"logisticRegression": {"maxIterations": 1000, "l2Penalty": 1.0}},
            "dataset": {"uri": csv, "labelColumn": "label", "validationFraction": 0.2, "seed": 42},
            "output": {"uri": f"{models}/bench-{r}-{i}/"},
        },
    }

def kt_submit(kt, arg):
    i, r = arg
    resp = requests.post(f"{kt}/v1/namespaces/default/trainingruns", json=kt_body(i, r), timeout=60)
    resp.raise_for_status()
    return resp.json()["metadata"]["name"]

peer_ref = json.dumps({"dataset": "synthetic",
                       "dataset_params": {"n_samples": 20000, "n_features": 20, "random_state": 0}})
peer_csv = json.dumps({"dataset": csv})

def peer_submit(body):
    def submit(_):
        resp = requests.post(f"{peer}/train/", data=body, headers={"Content-Type": "application/json"}, timeout=60)
        resp.raise_for_status()
        return resp.json()["task_id"]
    return submit

def wait_all(url, ids, done_word, fail_word):
    s = requests.Session()
    pending, results = list(ids), {}
    deadline = time.monotonic() + 600
    while pending:
        nxt = []
        for tid in pending:
            j = s.get(f"{url}/status/{tid}", timeout=30).json()
            if j["status"] == done_word:
                results[tid] = j
            elif j["status"] == fail_word:
                raise RuntimeError(f"{url}: task {tid} failed: {j.get('error')}")
            else:
                nxt.append(tid)
        pending = nxt
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} tasks unfinished")
            time.sleep(poll)
    return results

def round_of(name, r):
    t0 = time.perf_counter()
    with ThreadPoolExecutor(jobs) as ex:
        if name in kt_side:
            ids = list(ex.map(lambda arg: kt_submit(kt_side[name], arg), [(i, r) for i in range(jobs)]))
        else:
            ids = list(ex.map(peer_submit(peer_ref if name == "peer-ref" else peer_csv), range(jobs)))
    submitted = time.perf_counter() - t0
    if name in kt_side:
        res = wait_all(kt_side[name], ids, "complete", "failure")
        acc = sorted({round(j["result"]["accuracy"], 4) for j in res.values()})
    else:
        res = wait_all(peer, ids, "SUCCESS", "failure")
        acc = sorted({round(j["result"]["accuracy"], 4) for j in res.values()})
    return time.perf_counter() - t0, submitted, acc

# Warm-up (not timed): one job each, so imports and page cache are hot on both sides.
for kt in kt_side.values():
    wait_all(kt, [kt_submit(kt, (0, "warm"))], "complete", "failure")
wait_all(peer, [peer_submit(peer_ref)(0)], "SUCCESS", "failure")
wait_all(peer, [peer_submit(peer_csv)(0)], "SUCCESS", "failure")

contenders = ["kubetrain", "kubetrain-nocache", "peer-ref", "peer-csv"]
times = {c: [] for c in contenders}
info = {}
for r in range(rounds):
    order = contenders if r % 2 == 0 else list(reversed(contenders))
    for c in order:
        total, submitted, acc = round_of(c, r)
        times[c].append(total)
        info[c] = {"all_submitted_s": round(submitted, 3), "accuracies": acc}

print(f"\n{jobs} logistic regression jobs on 20,000 x 20 (make_classification, random_state=0), "
      f"2 workers each side, {rounds} interleaved rounds, status polled every {poll}s, {os.cpu_count()} cores")
print(f"{'contender':<18} {'median s':>9} {'min s':>7} {'max s':>7}  all rounds / accuracy")
med = {}
for c in contenders:
    xs = times[c]
    med[c] = statistics.median(xs)
    print(f"{c:<18} {med[c]:>9.3f} {min(xs):>7.3f} {max(xs):>7.3f}  "
          f"{' '.join(f'{x:.3f}' for x in xs)} / {info[c]['accuracies']}")
best_peer = min(med["peer-ref"], med["peer-csv"])
for c in kt_side:
    print(f"ratio {c} / fastest peer variant: {med[c] / best_peer:.2f}x (target <= 0.5x)")
PY
