"""Tree models: kubetrain against LightGBM and scikit-learn on the trainer benchmark's data.

Run by tests/bench/trainer.sh (after the linear part, with the same venv and data files):
    python trees.py KUBETRAIN WORK ROWS FEATURES THREADS

For the classification and the regression set (200,000 x 50 by default, 80/20 split) it times,
in the same run and with THREADS threads each:
  - kubetrain `train --algorithm gradient-boosted-trees` (defaults: 100 iterations, 31 leaves,
    learning rate 0.1, 255 bins) against LightGBM 4.7 `LGBM*(n_estimators=100, num_leaves=31,
    learning_rate=0.1, max_bin=255)` and scikit-learn `HistGradientBoosting*(max_iter=100,
    early_stopping=False)`;
  - kubetrain `train --algorithm random-forest` (100 trees) against scikit-learn
    `RandomForest*(n_estimators=100, n_jobs=THREADS)`.
Fit seconds: kubetrain's from summary.json (binning + boosting, data already parsed); the
peers' `fit` on a NumPy array already in memory. Scores on the 20% test split, kubetrain's
through `kubetrain predict`; "load s" is `kubetrain predict` of a single row, which is almost
all loading the model. Peak RSS of each kubetrain
process (from wait4), and in brackets the peak while fitting (summary.json's
`fitPeakMemoryBytes`: the parsed data, float32, plus the fit), beside the float64 size of the
training feature matrix.
"""
import json, os, subprocess, sys, time
from io import StringIO

import numpy as np
import pandas as pd
import lightgbm
from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score
from threadpoolctl import threadpool_limits

kubetrain, work, rows, features, threads = sys.argv[1:]
rows, features, threads = int(rows), int(features), int(threads)
SETS = [
    ("classification", "label", f"train_{rows}x{features}.csv", f"test_{rows}x{features}.csv"),
    ("regression", "target", f"reg_train_{rows}x{features}.csv", f"reg_test_{rows}x{features}.csv"),
]
# BENCH_TREE_TASKS=regression runs one task only. BENCH_FOREST_ROWS=N fits the forests (both
# sides) on the first N training rows: scikit-learn's RandomForestRegressor tries every feature
# at every split and takes tens of minutes on 160,000 x 50 on 2 cores.
TASKS = os.environ.get("BENCH_TREE_TASKS", "classification,regression").split(",")
FOREST_ROWS = int(os.environ.get("BENCH_FOREST_ROWS", "0")) or None


def run(args):
    """Run a command; return (seconds, peak RSS in MB, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{args[:3]} failed with {proc.returncode}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, out


def score(task, y, predicted, proba=None):
    if task == "classification":
        return accuracy_score(y, predicted), log_loss(y, np.clip(proba, 1e-15, 1))
    return r2_score(y, predicted), mean_squared_error(y, predicted) ** 0.5


def kubetrain_fit(task, label, train, test, algorithm, name):
    out = os.path.join(work, f"kubetrain-{name}")
    args = [kubetrain, "train", "--algorithm", algorithm, "--task", task, "--data", train,
            "--out", out, "--label-column", label, "--validation-fraction", "0",
            "--threads", str(threads), "--progress", "none"]
    _, rss, _ = run(args)
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    model = os.path.join(out, "model.json")
    # Loading the model: `predict` of a single row is almost nothing else.
    one_row = os.path.join(work, f"one_row_{name}.csv")
    with open(test) as src, open(one_row, "w") as dst:
        dst.write(src.readline() + src.readline())
    load, _, _ = run([kubetrain, "predict", "--model", model, "--data", one_row])
    seconds, _, text = run([kubetrain, "predict", "--model", model, "--data", test,
                            "--threads", str(threads)])
    predicted = pd.read_csv(StringIO(text))
    proba = predicted[[c for c in predicted.columns if c.startswith("p_")]].to_numpy() \
        if task == "classification" else None
    fit_peak = (summary["timings"].get("fitPeakMemoryBytes") or 0) / 1e6
    return summary["timings"]["fitSeconds"], (rss, fit_peak), predicted["prediction"].to_numpy(), proba, \
        os.path.getsize(model) / 1e6, seconds, load


def peer_fit(model, X, y, X_test, task):
    start = time.perf_counter()
    with threadpool_limits(threads):
        model.fit(X, y)
        fit = time.perf_counter() - start
        predicted = model.predict(X_test)
        proba = model.predict_proba(X_test) if task == "classification" else None
    return fit, predicted, proba


for task, label, train_name, test_name in SETS:
    if task not in TASKS:
        continue
    train, test = os.path.join(work, train_name), os.path.join(work, test_name)
    frame, test_frame = pd.read_csv(train), pd.read_csv(test)
    X, y = frame.drop(columns=label).to_numpy(), frame[label].to_numpy()
    X_test, y_test = test_frame.drop(columns=label).to_numpy(), test_frame[label].to_numpy()
    matrix_mb = X.astype(np.float64).nbytes / 1e6
    classify = task == "classification"
    peers = {
        "LightGBM": (lightgbm.LGBMClassifier if classify else lightgbm.LGBMRegressor)(
            n_estimators=100, num_leaves=31, learning_rate=0.1, max_bin=255,
            num_threads=threads, verbose=-1),
        "HistGB": (HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor)(
            max_iter=100, early_stopping=False, random_state=0),
        "RandomForest": (RandomForestClassifier if classify else RandomForestRegressor)(
            n_estimators=100, n_jobs=threads, random_state=0),
    }
    forest_train = train
    if FOREST_ROWS and FOREST_ROWS < len(y):
        forest_train = os.path.join(work, f"forest_{FOREST_ROWS}_{train_name}")
        frame.head(FOREST_ROWS).to_csv(forest_train, index=False)
    results = {}
    for name, model in peers.items():
        cut = FOREST_ROWS if name == "RandomForest" else None
        results[name] = peer_fit(model, X[:cut], y[:cut], X_test, task)
    ours = {
        "gradient-boosted-trees": kubetrain_fit(task, label, train, test, "gradient-boosted-trees", f"gbt-{task}"),
        "random-forest": kubetrain_fit(task, label, forest_train, test, "random-forest", f"rf-{task}"),
    }
    metric = ("accuracy", "log loss") if classify else ("R2", "RMSE")
    print()
    print(f"trees, {task}: {len(y)} train x {X.shape[1]} features, {len(y_test)} test rows; "
          f"{threads} threads each; feature matrix {matrix_mb:.0f} MB as float64"
          + (f"; forests on the first {FOREST_ROWS} rows" if FOREST_ROWS else ""))
    print(f"{'':<26}{'fit s':>9}{metric[0]:>10}{metric[1]:>10}{'peak RSS MB':>19}{'model MB':>10}"
          f"{'predict s':>11}{'load s':>8}")
    scores = {}
    for name, (fit, predicted, proba) in results.items():
        scores[name] = (fit,) + score(task, y_test, predicted, proba)
        print(f"{name:<26}{fit:>9.2f}{scores[name][1]:>10.4f}{scores[name][2]:>10.4f}")
    for name, (fit, rss, predicted, proba, model_mb, predict_s, load_s) in ours.items():
        scores[name] = (fit,) + score(task, y_test, predicted, proba)
        print(f"{'kubetrain ' + name:<26}{fit:>9.2f}{scores[name][1]:>10.4f}{scores[name][2]:>10.4f}"
              f"{rss[0]:>10.0f} ({rss[1]:>4.0f} fit){model_mb:>10.1f}{predict_s:>11.2f}{load_s:>8.2f}")
    gbt, rf = scores["gradient-boosted-trees"], scores["random-forest"]
    unit, scale = ("pp", 100) if classify else ("", 1)
    for peer in ("LightGBM", "HistGB"):
        print(f"ratio boosted trees / {peer}: fit {gbt[0] / scores[peer][0]:.2f}x, "
              f"{metric[0]} difference {scale * (gbt[1] - scores[peer][1]):+.4f}{unit}")
    print(f"ratio random forest / RandomForest: fit {rf[0] / scores['RandomForest'][0]:.2f}x, "
          f"{metric[0]} difference {scale * (rf[1] - scores['RandomForest'][1]):+.4f}{unit}")
