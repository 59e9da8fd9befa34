#!/usr/bin/env python3
"""Reference ("oracle") scores of LightGBM and scikit-learn tree ensembles.

kubetrain's own gradient-boosted trees and random forest are tested against
these figures. For each data set the script trains on `<set>_train.csv`,
scores on `<set>_test.csv` and prints one row per model:

    classifiers: test accuracy, test log loss, fit seconds
    regressors:  test R², RMSE, MAE, fit seconds

Data sets:
    breast_cancer  binary,   label column `label`, every other column a feature
    digits         10-class, label column `label`
    diabetes       regression, target column `target`
    adult_numeric  binary, the 6 integer columns of adult_raw_{train,test}.csv
                   (age, fnlwgt, education_num, capital_gain, capital_loss,
                   hours_per_week); label `income` (`>50K` -> 1, `<=50K` -> 0).
                   Always read from --adult-dir (default /work/shared/datasets).

Models (2 threads everywhere, otherwise library defaults):
    LightGBM      LGBM{Classifier,Regressor}(n_estimators=100, num_leaves=31,
                  learning_rate=0.1, max_bin=255, num_threads=2, verbose=-1)
    HistGB        HistGradientBoosting{Classifier,Regressor}(max_iter=100,
                  early_stopping=False, random_state=0)
    RandomForest  RandomForest{Classifier,Regressor}(n_estimators=100,
                  n_jobs=2, random_state=0)

Usage:
    python trees.py [DATA_DIR] [--adult-dir DIR] [--json out.json]

DATA_DIR defaults to ../data next to this script (tests/data); the shared
datasets folder works too. Fit seconds are wall time of one fit: indicative.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import sklearn
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent / "data"
DEFAULT_ADULT = Path("/work/shared/datasets")

# The integer columns of adult_raw, as spelled in its header ("-" or "_").
ADULT_NUMERIC = ["age", "fnlwgt", "education_num", "capital_gain",
                 "capital_loss", "hours_per_week"]


def models(task):
    """(name, estimator) pairs for a task: "classification" or "regression"."""
    lgbm = dict(n_estimators=100, num_leaves=31, learning_rate=0.1,
                max_bin=255, num_threads=2, verbose=-1)
    hgb = dict(max_iter=100, early_stopping=False, random_state=0)
    rf = dict(n_estimators=100, n_jobs=2, random_state=0)
    if task == "classification":
        return [("LightGBM", LGBMClassifier(**lgbm)),
                ("HistGB", HistGradientBoostingClassifier(**hgb)),
                ("RandomForest", RandomForestClassifier(**rf))]
    return [("LightGBM", LGBMRegressor(**lgbm)),
            ("HistGB", HistGradientBoostingRegressor(**hgb)),
            ("RandomForest", RandomForestRegressor(**rf))]


def split_xy(df, label):
    return df.drop(columns=[label]), df[label]


def load_plain(data_dir, name, label):
    """Features and label of <name>_train.csv and <name>_test.csv."""
    train = pd.read_csv(data_dir / f"{name}_train.csv")
    test = pd.read_csv(data_dir / f"{name}_test.csv")
    return split_xy(train, label) + split_xy(test, label)


def adult_columns(header):
    """The 6 integer columns as the header spells them (education_num or education-num)."""
    spelled = {c.replace("-", "_"): c for c in header}
    missing = [c for c in ADULT_NUMERIC if c not in spelled]
    if missing:
        sys.exit(f"adult_raw: columns {missing} not in header {list(header)}")
    return [spelled[c] for c in ADULT_NUMERIC]


def load_adult(adult_dir):
    out = []
    for part in ("train", "test"):
        df = pd.read_csv(adult_dir / f"adult_raw_{part}.csv")
        cols = adult_columns(df.columns)
        x = df[cols].astype("int64")
        y = (df["income"].str.strip() == ">50K").astype("int64")
        out += [x, y]
    return tuple(out)


def score(task, model, x_test, y_test):
    if task == "classification":
        proba = model.predict_proba(x_test)
        pred = model.classes_[np.argmax(proba, axis=1)]
        return {"accuracy": accuracy_score(y_test, pred),
                "log_loss": log_loss(y_test, proba, labels=model.classes_)}
    pred = model.predict(x_test)
    return {"r2": r2_score(y_test, pred),
            "rmse": math.sqrt(mean_squared_error(y_test, pred)),
            "mae": mean_absolute_error(y_test, pred)}


def run_set(task, data):
    x_train, y_train, x_test, y_test = data
    rows = {}
    for name, model in models(task):
        start = time.perf_counter()
        model.fit(x_train, y_train)
        seconds = time.perf_counter() - start
        rows[name] = {**score(task, model, x_test, y_test), "fit_s": seconds}
    return rows


def print_table(set_name, task, shape, rows):
    print(f"\n{set_name} ({task}; train {shape[0]}, test {shape[1]}, "
          f"{shape[2]} features)")
    keys = list(next(iter(rows.values())))
    print(f"  {'model':<13}" + "".join(f"{k:>10}" for k in keys))
    for name, figures in rows.items():
        print(f"  {name:<13}" + "".join(f"{figures[k]:>10.4f}" for k in keys))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA,
                        help="folder with breast_cancer/digits/diabetes CSVs")
    parser.add_argument("--adult-dir", type=Path, default=DEFAULT_ADULT,
                        help="folder with adult_raw_{train,test}.csv")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    sets = [
        ("breast_cancer", "classification",
         lambda: load_plain(args.data_dir, "breast_cancer", "label")),
        ("digits", "classification",
         lambda: load_plain(args.data_dir, "digits", "label")),
        ("diabetes", "regression",
         lambda: load_plain(args.data_dir, "diabetes", "target")),
        ("adult_numeric", "classification", lambda: load_adult(args.adult_dir)),
    ]
    versions = {"lightgbm": lightgbm.__version__,
                "scikit-learn": sklearn.__version__,
                "numpy": np.__version__, "pandas": pd.__version__}
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))

    results = {}
    for set_name, task, load in sets:
        data = load()
        rows = run_set(task, data)
        shape = (len(data[0]), len(data[2]), data[0].shape[1])
        print_table(set_name, task, shape, rows)
        results[set_name] = {
            "task": task,
            "features": list(data[0].columns),
            "models": {m: {k: round(v, 4) for k, v in f.items()}
                       for m, f in rows.items()},
        }

    if args.json:
        args.json.write_text(json.dumps({"versions": versions, "sets": results},
                                        indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
