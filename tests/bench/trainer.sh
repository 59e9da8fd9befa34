#!/usr/bin/env bash
# Benchmark: `kubetrain train` against scikit-learn and LightGBM on the same synthetic data, in
# one run: logistic regression (classification), ridge regression (regression), and the tree
# models of both tasks (tests/bench/trees.py, skipped with BENCH_TREES=0).
#
# Usage: tests/bench/trainer.sh            (from anywhere; needs python3 and cargo)
#   BENCH_ROWS=200000 BENCH_FEATURES=50    data size (default 200,000 x 50, split 80/20)
#   BENCH_REPEATS=3                        runs per contender; the median is reported
#   BENCH_THREADS=2                        kubetrain --threads (scikit-learn uses its BLAS threads)
#
# What it does: creates a venv under .cache/bench-venv (pip: numpy pandas scikit-learn
# threadpoolctl), generates `make_classification(random_state=0)` data as CSV under
# .cache/bench, builds kubetrain in release mode, then times
#   - scikit-learn: pandas.read_csv + LogisticRegression(solver="lbfgs", max_iter=1000, C=1)
#     + pickling the model;
#   - kubetrain: the `kubetrain train` process (CSV -> model.json + summary.json), with its
#     own fit time from summary.json (standardization + L-BFGS);
# both with the same objective (alpha = 1/C = 1). Accuracy and log loss are computed on the
# 20% test split (kubetrain's through `kubetrain predict`). It prints the seconds and the
# ratios kubetrain / scikit-learn (below 1 means kubetrain is faster).
#
# Regression: `make_regression(noise=10, random_state=0)` of the same size; scikit-learn
# StandardScaler + Ridge(alpha=1.0) (timed together, as kubetrain's fit time includes its
# standardization) against `kubetrain train --algorithm linear-regression --l2-penalty 1`;
# R² and RMSE on the 20% test split (kubetrain's through `kubetrain predict`).
#
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, set on some machines here for old OpenBLAS builds,
# slow a current numpy down; they are unset for the scikit-learn process only, and the BLAS
# kernel in use is printed so the comparison is honest.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=$root/.cache/bench-venv
work=$root/.cache/bench
rows=${BENCH_ROWS:-200000}
features=${BENCH_FEATURES:-50}
repeats=${BENCH_REPEATS:-3}
threads=${BENCH_THREADS:-2}
mkdir -p "$work"

if ! "$venv/bin/python" -c 'import numpy, pandas, sklearn, threadpoolctl, lightgbm' 2>/dev/null; then
    echo "bench: creating $venv" >&2
    python3 -m venv "$venv"
    # LightGBM's wheel needs libgomp (Debian: libgomp1).
    "$venv/bin/pip" install --quiet --disable-pip-version-check numpy pandas scikit-learn==1.9.1 \
        threadpoolctl lightgbm==4.7.0
fi

echo "bench: building kubetrain (release)" >&2
cargo build --quiet --release -p kubetrain --manifest-path "$root/Cargo.toml"
kubetrain=$root/target/release/kubetrain

env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
    "$venv/bin/python" - "$kubetrain" "$work" "$rows" "$features" "$repeats" "$threads" <<'PY'
import json, os, pickle, statistics, subprocess, sys, time

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info

kubetrain, work, rows, features, repeats, threads = sys.argv[1:]
rows, features, repeats = int(rows), int(features), int(repeats)
train_csv = os.path.join(work, f"train_{rows}x{features}.csv")
test_csv = os.path.join(work, f"test_{rows}x{features}.csv")

def write_split(make, target, train_path, test_path):
    """The first 80% of `make()`'s rows to train_path, the rest to test_path (once)."""
    if os.path.exists(train_path) and os.path.exists(test_path):
        return
    print(f"bench: generating {os.path.basename(train_path)} (random_state=0)", file=sys.stderr)
    X, y = make()
    cut = int(rows * 0.8)
    columns = [f"f{i}" for i in range(features)]
    for path, part in ((train_path, slice(0, cut)), (test_path, slice(cut, rows))):
        frame = pd.DataFrame(X[part], columns=columns)
        frame[target] = y[part]
        frame.to_csv(path + ".tmp", index=False)
        os.replace(path + ".tmp", path)

write_split(lambda: make_classification(n_samples=rows, n_features=features,
                                        n_informative=features // 2, n_redundant=features // 5,
                                        random_state=0),
            "label", train_csv, test_csv)

test = pd.read_csv(test_csv)
X_test, y_test = test.drop(columns="label").to_numpy(), test["label"].to_numpy()
size_mb = os.path.getsize(train_csv) / 1e6
blas = [(i.get("internal_api"), i.get("architecture"), i.get("num_threads")) for i in threadpool_info()]

def sklearn_run():
    start = time.perf_counter()
    frame = pd.read_csv(train_csv)
    X, y = frame.drop(columns="label").to_numpy(), frame["label"].to_numpy()
    fit_start = time.perf_counter()
    model = LogisticRegression(solver="lbfgs", max_iter=1000, C=1.0).fit(X, y)
    fit = time.perf_counter() - fit_start
    with open(os.path.join(work, "sklearn.pkl"), "wb") as f:
        pickle.dump(model, f)
    total = time.perf_counter() - start
    # Same data standardized first, as kubetrain does: the like-for-like fit (not end to end).
    scaled_start = time.perf_counter()
    scaled = LogisticRegression(solver="lbfgs", max_iter=1000, C=1.0).fit(StandardScaler().fit_transform(X), y)
    return fit, total, model, time.perf_counter() - scaled_start, scaled

def kubetrain_run(out):
    start = time.perf_counter()
    subprocess.run([kubetrain, "train", "--data", train_csv, "--out", out, "--label-column", "label",
                    "--validation-fraction", "0", "--max-iterations", "1000", "--l2-penalty", "1",
                    "--tolerance", "1e-4", "--threads", threads, "--progress", "none"], check=True)
    total = time.perf_counter() - start
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    return summary["timings"]["fitSeconds"], total, summary

# Interleaved, so that other load on the machine hits both contenders alike.
sk, kt = [], []
for _ in range(repeats):
    sk.append(sklearn_run())
    kt.append(kubetrain_run(os.path.join(work, "kubetrain-model")))
sk_fit, sk_total = statistics.median(r[0] for r in sk), statistics.median(r[1] for r in sk)
sk_scaled_fit = statistics.median(r[3] for r in sk)
kt_fit, kt_total = statistics.median(r[0] for r in kt), statistics.median(r[1] for r in kt)

sk_model = sk[-1][2]
sk_proba = sk_model.predict_proba(X_test)
sk_acc, sk_loss = accuracy_score(y_test, sk_proba.argmax(axis=1)), log_loss(y_test, sk_proba)

pred = subprocess.run([kubetrain, "predict", "--model", os.path.join(work, "kubetrain-model", "model.json"),
                       "--data", test_csv], check=True, capture_output=True, text=True)
from io import StringIO
out = pd.read_csv(StringIO(pred.stdout))
kt_proba = out[["p_0", "p_1"]].to_numpy()
kt_acc = accuracy_score(y_test, out["prediction"].to_numpy())
kt_loss = log_loss(y_test, np.clip(kt_proba, 1e-15, 1))
summary = kt[-1][2]

print(f"data: {rows} x {features} synthetic (make_classification, random_state=0), "
      f"train {summary['dataset']['rows']} rows ({size_mb:.0f} MB CSV), test {len(y_test)} rows; "
      f"median of {repeats} runs; cores: {os.cpu_count()}")
print(f"scikit-learn BLAS: {blas}")
print(f"kubetrain: {summary['fit']['iterations']} iterations, {summary['fit']['evaluations']} passes, "
      f"converged={summary['fit']['converged']}; scikit-learn: {sk_model.n_iter_[0]} iterations "
      f"(raw X), {sk[-1][4].n_iter_[0]} (standardized X)")
print(f"{'':<14}{'fit s':>9}{'end-to-end s':>15}{'accuracy':>10}{'log loss':>10}")
print(f"{'scikit-learn':<14}{sk_fit:>9.3f}{sk_total:>15.3f}{sk_acc:>10.4f}{sk_loss:>10.4f}")
print(f"{'  std. X':<14}{sk_scaled_fit:>9.3f}{'-':>15}{'':>10}{'':>10}   (StandardScaler + fit, like kubetrain)")
print(f"{'kubetrain':<14}{kt_fit:>9.3f}{kt_total:>15.3f}{kt_acc:>10.4f}{kt_loss:>10.4f}")
print(f"ratio kubetrain/scikit-learn: fit {kt_fit / sk_fit:.2f}x, end-to-end {kt_total / sk_total:.2f}x, "
      f"accuracy difference {100 * (kt_acc - sk_acc):+.2f} pp; "
      f"fit vs scikit-learn on standardized X {kt_fit / sk_scaled_fit:.2f}x")

# Regression: ridge against scikit-learn's Ridge on standardized features.
reg_train = os.path.join(work, f"reg_train_{rows}x{features}.csv")
reg_test = os.path.join(work, f"reg_test_{rows}x{features}.csv")
write_split(lambda: make_regression(n_samples=rows, n_features=features,
                                    n_informative=features // 2, noise=10.0, random_state=0),
            "target", reg_train, reg_test)
reg_test_frame = pd.read_csv(reg_test)
y_reg_test = reg_test_frame["target"].to_numpy()

def sklearn_ridge():
    start = time.perf_counter()
    frame = pd.read_csv(reg_train)
    X, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    fit_start = time.perf_counter()
    scaler = StandardScaler().fit(X)
    model = Ridge(alpha=1.0).fit(scaler.transform(X), y)
    fit = time.perf_counter() - fit_start
    return fit, time.perf_counter() - start, scaler, model

def kubetrain_ridge(out):
    start = time.perf_counter()
    subprocess.run([kubetrain, "train", "--algorithm", "linear-regression", "--data", reg_train,
                    "--out", out, "--label-column", "target", "--validation-fraction", "0",
                    "--l2-penalty", "1", "--threads", threads, "--progress", "none"], check=True)
    total = time.perf_counter() - start
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)["timings"]["fitSeconds"], total

sk, kt = [], []
for _ in range(repeats):
    sk.append(sklearn_ridge())
    kt.append(kubetrain_ridge(os.path.join(work, "kubetrain-ridge")))
sk_fit, sk_total = statistics.median(r[0] for r in sk), statistics.median(r[1] for r in sk)
kt_fit, kt_total = statistics.median(r[0] for r in kt), statistics.median(r[1] for r in kt)
_, _, scaler, ridge = sk[-1]
sk_pred = ridge.predict(scaler.transform(reg_test_frame.drop(columns="target").to_numpy()))
pred = subprocess.run([kubetrain, "predict", "--model", os.path.join(work, "kubetrain-ridge", "model.json"),
                       "--data", reg_test], check=True, capture_output=True, text=True)
kt_pred = pd.read_csv(StringIO(pred.stdout))["prediction"].to_numpy()
sk_r2, kt_r2 = r2_score(y_reg_test, sk_pred), r2_score(y_reg_test, kt_pred)
sk_rmse, kt_rmse = mean_squared_error(y_reg_test, sk_pred) ** 0.5, mean_squared_error(y_reg_test, kt_pred) ** 0.5
print()
print(f"regression: {rows} x {features} synthetic (make_regression, noise=10, random_state=0); "
      f"median of {repeats} runs")
print(f"{'':<14}{'fit s':>9}{'end-to-end s':>15}{'R2':>10}{'RMSE':>10}")
print(f"{'Ridge':<14}{sk_fit:>9.3f}{sk_total:>15.3f}{sk_r2:>10.4f}{sk_rmse:>10.3f}   (StandardScaler + Ridge)")
print(f"{'kubetrain':<14}{kt_fit:>9.3f}{kt_total:>15.3f}{kt_r2:>10.4f}{kt_rmse:>10.3f}")
print(f"ratio kubetrain/scikit-learn: fit {kt_fit / sk_fit:.2f}x, end-to-end {kt_total / sk_total:.2f}x, "
      f"R2 difference {kt_r2 - sk_r2:+.5f}")
PY

if [ "${BENCH_TREES:-1}" != 0 ]; then
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        "$venv/bin/python" "$root/tests/bench/trees.py" "$kubetrain" "$work" "$rows" "$features" "$threads"
fi
