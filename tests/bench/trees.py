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
through `kubetrain predict` (which also times loading the model). Peak RSS of each kubetrain
process (from wait4) is printed beside the float64 size of the training feature matrix.
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
    seconds, _, text = run([kubetrain, "predict", "--model", model, "--data", test,
                            "--threads", str(threads)])
    predicted = pd.read_csv(StringIO(text))
    proba = predicted[[c for c in predicted.columns if c.startswith("p_")]].to_numpy() \
        if task == "classification" else None
    return summary["timings"]["fitSeconds"], rss, predicted["prediction"].to_numpy(), proba, \
        os.path.getsize(model) / 1e6, seconds


def peer_fit(model, X, y, X_test, task):
    start = time.perf_counter()
    with threadpool_limits(threads):
        model.fit(X, y)
        fit = time.perf_counter() - start
        predicted = model.predict(X_test)
        proba = model.predict_proba(X_test) if task == "classification" else None
    return fit, predicted, proba


for task, label, train_name, test_name in SETS:
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
    results = {name: peer_fit(model, X, y, X_test, task) for name, model in peers.items()}
    ours = {
        "gradient-boosted-trees": kubetrain_fit(task, label, train, test, "gradient-boosted-trees", f"gbt-{task}"),
        "random-forest": kubetrain_fit(task, label, train, test, "random-forest", f"rf-{task}"),
    }
    metric = ("accuracy", "log loss") if classify else ("R2", "RMSE")
    print()
    print(f"trees, {task}: {len(y)} train x {X.shape[1]} features, {len(y_test)} test rows; "
          f"{threads} threads each; feature matrix {matrix_mb:.0f} MB as float64")
    print(f"{'':<26}{'fit s':>9}{metric[0]:>10}{metric[1]:>10}{'peak RSS MB':>13}{'model MB':>10}{'predict s':>11}")
    scores = {}
    for name, (fit, predicted, proba) in results.items():
        scores[name] = (fit,) + score(task, y_test, predicted, proba)
        print(f"{name:<26}{fit:>9.2f}{scores[name][1]:>10.4f}{scores[name][2]:>10.4f}")
    for name, (fit, rss, predicted, proba, model_mb, predict_s) in ours.items():
        scores[name] = (fit,) + score(task, y_test, predicted, proba)
        print(f"{'kubetrain ' + name:<26}{fit:>9.2f}{scores[name][1]:>10.4f}{scores[name][2]:>10.4f}"
              f"{rss:>13.0f}{model_mb:>10.1f}{predict_s:>11.2f}")
    gbt, rf = scores["gradient-boosted-trees"], scores["random-forest"]
    unit, scale = ("pp", 100) if classify else ("", 1)
    for peer in ("LightGBM", "HistGB"):
        print(f"ratio boosted trees / {peer}: fit {gbt[0] / scores[peer][0]:.2f}x, "
              f"{metric[0]} difference {scale * (gbt[1] - scores[peer][1]):+.4f}{unit}")
    print(f"ratio random forest / RandomForest: fit {rf[0] / scores['RandomForest'][0]:.2f}x, "
          f"{metric[0]} difference {scale * (rf[1] - scores['RandomForest'][1]):+.4f}{unit}")
