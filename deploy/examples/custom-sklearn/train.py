"""Gradient-boosted trees with scikit-learn, as a kubetrain custom training program.

kubetrain runs this under `kubetrain exec -- python /app/train.py` and relies on contract 1:
- reads KUBETRAIN_DATA_FILE (a CSV with a header row, already downloaded) and, when set,
  KUBETRAIN_VALIDATION_DATA_FILE; otherwise holds out KUBETRAIN_VALIDATION_FRACTION of the rows,
  split with KUBETRAIN_SEED (stratified by class when possible; fraction 0 evaluates on the
  training rows);
- the label is KUBETRAIN_LABEL_COLUMN (default "label"), the features KUBETRAIN_FEATURE_COLUMNS
  or every other column; features must be finite numbers; labels are class names for
  KUBETRAIN_TASK=classification and numbers for regression;
- params come from KUBETRAIN_PARAMS (a JSON object of strings): n_estimators, learning_rate,
  max_depth, subsample, random_state (default KUBETRAIN_SEED), and sigterm_marker (for tests:
  a file where to record that SIGTERM arrived);
- prints one JSON object per stdout line: a progress event after each twentieth or so of the
  trees, with loss and validationLoss the log loss (classification) or mean squared error
  (regression) on the training and the validation rows, then one metrics event;
- writes model.joblib (the fitted estimator) and features.json (the feature columns in the
  order the model expects them) into KUBETRAIN_MODEL_DIR, which kubetrain uploads after exit 0;
- exits 65 on bad input with the reason as the last line of stderr, 143 on SIGTERM.
"""

import csv
import json
import math
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.metrics import (accuracy_score, f1_score, log_loss, mean_absolute_error,
                             mean_squared_error, r2_score, root_mean_squared_error)
from sklearn.model_selection import train_test_split

EXIT_BAD_INPUT = 65

# name: (parse, default, is the value valid, what a valid value is); random_state's default
# (None here) is KUBETRAIN_SEED.
PARAMS: dict[str, tuple[Callable[[str], Any], Any, Callable[[Any], bool], str]] = {
    "n_estimators": (int, 100, lambda v: v >= 1, "an integer >= 1"),
    "learning_rate": (float, 0.1, lambda v: 0 < v < math.inf, "a number > 0"),
    "max_depth": (int, 3, lambda v: v >= 1, "an integer >= 1"),
    "subsample": (float, 1.0, lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "random_state": (int, None, lambda v: 0 <= v < 2**32, "an integer in [0, 4294967295]"),
}
MARKER_PARAM = "sigterm_marker"


class BadInput(Exception):
    """Data, params or environment that no retry can fix: exit 65 with this message."""


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise BadInput(f"{name} is not set: run this program under `kubetrain exec`")
    return value


def emit(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


def parse_params(raw: str, seed: int) -> tuple[dict[str, Any], str | None]:
    try:
        given = json.loads(raw)
    except json.JSONDecodeError as error:
        raise BadInput(f"KUBETRAIN_PARAMS is not JSON: {error}") from None
    if not isinstance(given, dict):
        raise BadInput("KUBETRAIN_PARAMS is not a JSON object")
    marker = given.pop(MARKER_PARAM, None)
    unknown = sorted(set(given) - set(PARAMS))
    if unknown:
        known = ", ".join(sorted([*PARAMS, MARKER_PARAM]))
        raise BadInput(f"unknown param {', '.join(unknown)}; known params: {known}")
    params = {name: default for name, (_, default, _, _) in PARAMS.items()}
    params["random_state"] = seed
    for name, text in given.items():
        parse, _, valid, expected = PARAMS[name]
        try:
            value = parse(text)
        except (TypeError, ValueError):
            value = None
        if value is None or not valid(value):
            raise BadInput(f"param {name}: {text!r} is not valid, expected {expected}")
        params[name] = value
    return params, marker


def stop_on_sigterm(marker: str | None) -> None:
    def handler(signum: int, _frame: object) -> None:
        if marker:
            Path(marker).write_text("SIGTERM\n")
        print("SIGTERM: stopping", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def number(cell: str, column: str, where: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise BadInput(f"{where}, column {column!r}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise BadInput(f"{where}, column {column!r}: {cell!r} is not a finite number")
    return value


def read_csv(path: str, shown: str, label: str, features: list[str] | None,
             classification: bool) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The feature columns, the feature matrix and the labels of one CSV file."""
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = next(reader, [])
        if not header:
            raise BadInput(f"{shown} is empty: expected a header row")
        names = features if features is not None else [c for c in header if c != label]
        for column in [label, *names]:
            if column not in header:
                raise BadInput(f"column {column!r} not found in {shown}; "
                               f"available columns: {', '.join(header)}")
        if not names:
            raise BadInput(f"{shown} has no feature columns besides the label {label!r}")
        columns = [header.index(c) for c in names]
        label_at = header.index(label)
        rows: list[list[float]] = []
        labels: list[Any] = []
        for row in reader:
            if not row:
                continue
            where = f"{shown} line {reader.line_num}"
            if len(row) != len(header):
                raise BadInput(f"{where}: {len(row)} cells, the header has {len(header)}")
            rows.append([number(row[i], header[i], where) for i in columns])
            if not classification:
                labels.append(number(row[label_at], label, where))
            elif row[label_at].strip():
                labels.append(row[label_at])
            else:
                raise BadInput(f"{where}, column {label!r}: the label is empty")
    if not rows:
        raise BadInput(f"{shown} has no data rows")
    return names, np.array(rows), np.array(labels)


def hold_out(x: np.ndarray, y: np.ndarray, fraction: float, seed: int,
             classification: bool) -> list[np.ndarray]:
    """x_train, x_validation, y_train, y_validation, stratified by class when possible."""
    if fraction == 0:
        return [x, x, y, y]
    for strata in [y, None] if classification else [None]:
        try:
            return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=strata)
        except ValueError as error:
            reason = str(error)
    raise BadInput(f"cannot hold out {fraction} of {len(y)} rows: {reason}")


def loss(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Log loss for classification, mean squared error for regression."""
    if isinstance(model, GradientBoostingClassifier):
        return float(log_loss(y, model.predict_proba(x), labels=model.classes_))
    return float(mean_squared_error(y, model.predict(x)))


def fit(model: Any, data: list[np.ndarray], total: int) -> None:
    """Grows the trees in about 20 warm-started steps, reporting progress after each."""
    x, x_val, y, y_val = data
    step = math.ceil(total / 20)
    for trees in [*range(step, total, step), total]:
        model.set_params(n_estimators=trees)
        model.fit(x, y)
        emit({"event": "progress", "iteration": trees, "total": total,
              "loss": loss(model, x, y), "validationLoss": loss(model, x_val, y_val)})


def metrics(model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    predicted = model.predict(x)
    if isinstance(model, GradientBoostingClassifier):
        found = {"accuracy": accuracy_score(y, predicted),
                 "log_loss": log_loss(y, model.predict_proba(x), labels=model.classes_),
                 "macro_f1": f1_score(y, predicted, average="macro")}
    else:
        found = {"r2": r2_score(y, predicted), "rmse": root_mean_squared_error(y, predicted),
                 "mae": mean_absolute_error(y, predicted)}
    return {name: float(v) for name, v in found.items() if math.isfinite(v)}


def load(classification: bool, seed: int) -> tuple[str, list[str], list[np.ndarray]]:
    """The label and feature columns, and x_train, x_validation, y_train, y_validation."""
    label = env("KUBETRAIN_LABEL_COLUMN", "label")
    listed = os.environ.get("KUBETRAIN_FEATURE_COLUMNS")
    wanted = [c.strip() for c in listed.split(",") if c.strip()] if listed else None
    data_file, data_uri = env("KUBETRAIN_DATA_FILE"), env("KUBETRAIN_DATA")
    names, x, y = read_csv(data_file, data_uri, label, wanted, classification)
    if "KUBETRAIN_VALIDATION_DATA_FILE" in os.environ:
        _, x_val, y_val = read_csv(env("KUBETRAIN_VALIDATION_DATA_FILE"),
                                   env("KUBETRAIN_VALIDATION_DATA"), label, names, classification)
        return label, names, [x, x_val, y, y_val]
    fraction = float(env("KUBETRAIN_VALIDATION_FRACTION"))
    return label, names, hold_out(x, y, fraction, seed, classification)


def check_classes(y: np.ndarray, y_val: np.ndarray) -> None:
    classes = set(map(str, y))
    if len(classes) < 2:
        raise BadInput(f"the training rows hold a single class, {classes}: nothing to learn")
    unseen = sorted(set(map(str, y_val)) - classes)
    if unseen:
        raise BadInput(f"validation rows have classes the training rows lack: {unseen}")


def main() -> None:
    if env("KUBETRAIN_CONTRACT") != "1":
        raise BadInput(f"this program speaks contract 1, not {env('KUBETRAIN_CONTRACT')}")
    classification = env("KUBETRAIN_TASK") == "classification"
    seed = int(env("KUBETRAIN_SEED")) % 2**32  # numpy's seeds are 32-bit
    params, marker = parse_params(env("KUBETRAIN_PARAMS", "{}"), seed)
    stop_on_sigterm(marker)
    label, names, data = load(classification, seed)
    if classification:
        check_classes(data[2], data[3])
        model = GradientBoostingClassifier(warm_start=True, **params)
    else:
        model = GradientBoostingRegressor(warm_start=True, **params)
    print(f"training on {len(data[2])} rows, validating on {len(data[3])}", flush=True)
    fit(model, data, params["n_estimators"])
    emit({"event": "metrics", "metrics": metrics(model, data[1], data[3])})
    model_dir = Path(env("KUBETRAIN_MODEL_DIR"))
    joblib.dump(model, model_dir / "model.joblib")
    (model_dir / "features.json").write_text(json.dumps({"label": label, "features": names}))


if __name__ == "__main__":
    try:
        main()
    except BadInput as problem:
        print(problem, file=sys.stderr, flush=True)
        sys.exit(EXIT_BAD_INPUT)
