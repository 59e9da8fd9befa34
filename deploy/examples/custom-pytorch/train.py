"""A small PyTorch MLP, as a kubetrain custom training program.

kubetrain runs this under `kubetrain exec -- python /app/train.py` and relies on contract 1:
- reads KUBETRAIN_DATA_FILE (a CSV with a header row, already downloaded) and, when set,
  KUBETRAIN_VALIDATION_DATA_FILE; otherwise holds out a random KUBETRAIN_VALIDATION_FRACTION of
  the rows, drawn with KUBETRAIN_SEED (fraction 0 evaluates on the training rows);
- the label is KUBETRAIN_LABEL_COLUMN (default "label"), the features KUBETRAIN_FEATURE_COLUMNS
  or every other column, all finite numbers, standardized with the training rows' statistics;
- KUBETRAIN_TASK=classification minimizes cross-entropy over the label's classes, regression
  the mean squared error of the label standardized like the features;
- params come from KUBETRAIN_PARAMS (a JSON object of strings): epochs, lr (Adam's learning
  rate), hidden (units in each of the two hidden layers), batch_size; KUBETRAIN_SEED seeds the
  weights and the shuffling; KUBETRAIN_THREADS, when set, caps PyTorch's CPU threads;
- uses the GPU when there is one and prints one JSON object per stdout line: a progress event
  per epoch (loss: the epoch's mean training loss; validationLoss: the loss on the validation
  rows), then one metrics event;
- writes model.pt (the state_dict) and preprocessing.json (the feature columns, their means and
  standard deviations, the classes in the order of the outputs or the label's mean and
  standard deviation, the hidden size) into KUBETRAIN_MODEL_DIR, uploaded after exit 0;
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

import torch
from torch import Tensor, nn
from torch.nn import functional as F

EXIT_BAD_INPUT = 65

# name: (parse, default, is the value valid, what a valid value is)
PARAMS: dict[str, tuple[Callable[[str], Any], Any, Callable[[Any], bool], str]] = {
    "epochs": (int, 50, lambda v: v >= 1, "an integer >= 1"),
    "lr": (float, 0.001, lambda v: 0 < v < math.inf, "a number > 0"),
    "hidden": (int, 64, lambda v: v >= 1, "an integer >= 1"),
    "batch_size": (int, 64, lambda v: v >= 1, "an integer >= 1"),
}

Loss = Callable[[Tensor, Tensor], Tensor]


class BadInput(Exception):
    """Data, params or environment that no retry can fix: exit 65 with this message."""


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise BadInput(f"{name} is not set: run this program under `kubetrain exec`")
    return value


def emit(event: dict[str, Any]) -> None:
    """One JSON line, leaving out the numbers JSON cannot hold (NaN, infinities)."""
    finite = {k: v for k, v in event.items() if not isinstance(v, float) or math.isfinite(v)}
    print(json.dumps(finite), flush=True)


def parse_params(raw: str) -> dict[str, Any]:
    try:
        given = json.loads(raw)
    except json.JSONDecodeError as error:
        raise BadInput(f"KUBETRAIN_PARAMS is not JSON: {error}") from None
    if not isinstance(given, dict):
        raise BadInput("KUBETRAIN_PARAMS is not a JSON object")
    unknown = sorted(set(given) - set(PARAMS))
    if unknown:
        known = ", ".join(sorted(PARAMS))
        raise BadInput(f"unknown param {', '.join(unknown)}; known params: {known}")
    params = {name: default for name, (_, default, _, _) in PARAMS.items()}
    for name, text in given.items():
        parse, _, valid, expected = PARAMS[name]
        try:
            value = parse(text)
        except (TypeError, ValueError):
            value = None
        if value is None or not valid(value):
            raise BadInput(f"param {name}: {text!r} is not valid, expected {expected}")
        params[name] = value
    return params


def stop_on_sigterm() -> None:
    def handler(signum: int, _frame: object) -> None:
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
             classification: bool) -> tuple[list[str], list[list[float]], list[Any]]:
    """The feature columns, the feature rows and the labels of one CSV file."""
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
    return names, rows, labels


def load(classification: bool, seed: int) -> tuple[list[str], list[list[Any]]]:
    """The feature columns, and the rows and labels of training and validation."""
    label = env("KUBETRAIN_LABEL_COLUMN", "label")
    listed = os.environ.get("KUBETRAIN_FEATURE_COLUMNS")
    wanted = [c.strip() for c in listed.split(",") if c.strip()] if listed else None
    data_file, data_uri = env("KUBETRAIN_DATA_FILE"), env("KUBETRAIN_DATA")
    names, x, y = read_csv(data_file, data_uri, label, wanted, classification)
    if "KUBETRAIN_VALIDATION_DATA_FILE" in os.environ:
        _, x_val, y_val = read_csv(env("KUBETRAIN_VALIDATION_DATA_FILE"),
                                   env("KUBETRAIN_VALIDATION_DATA"), label, names, classification)
        return names, [x, x_val, y, y_val]
    fraction = float(env("KUBETRAIN_VALIDATION_FRACTION"))
    if fraction == 0:
        return names, [x, x, y, y]
    held = math.ceil(len(y) * fraction)
    if not 0 < fraction < 1 or held >= len(y):
        raise BadInput(f"cannot hold out {fraction} of {len(y)} rows and keep some for training")
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed)).tolist()
    train, validation = order[held:], order[:held]
    return names, [[x[i] for i in train], [x[i] for i in validation],
                   [y[i] for i in train], [y[i] for i in validation]]


def encode_labels(classification: bool, y: list[Any],
                  y_val: list[Any]) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """The label tensors, and what preprocessing.json records about the label."""
    if classification:
        classes = sorted(set(y))
        if len(classes) < 2:
            raise BadInput(f"the training rows hold a single class, {classes}: nothing to learn")
        unseen = sorted(set(y_val) - set(classes))
        if unseen:
            raise BadInput(f"validation rows have classes the training rows lack: {unseen}")
        index = {c: i for i, c in enumerate(classes)}
        return (torch.tensor([index[c] for c in y]), torch.tensor([index[c] for c in y_val]),
                {"classes": classes})
    target = torch.tensor(y, dtype=torch.float64)
    target_val = torch.tensor(y_val, dtype=torch.float64)
    mean, std = target.mean().item(), target.std(correction=0).item() or 1.0
    return (((target - mean) / std).float(), ((target_val - mean) / std).float(),
            {"target_mean": mean, "target_std": std})


def standardize(x: list[list[float]],
                x_val: list[list[float]]) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Both feature sets scaled with the training rows' means and standard deviations."""
    rows = torch.tensor(x, dtype=torch.float64)
    rows_val = torch.tensor(x_val, dtype=torch.float64)
    means, stds = rows.mean(0), rows.std(0, correction=0)
    stds = torch.where(stds > 0, stds, torch.ones_like(stds))
    return (((rows - means) / stds).float(), ((rows_val - means) / stds).float(),
            {"means": means.tolist(), "stds": stds.tolist()})


def fit(model: nn.Module, loss: Loss, data: list[Tensor], params: dict[str, Any]) -> None:
    """Adam over shuffled mini-batches, a progress event after each epoch."""
    x, x_val, y, y_val = data
    optimizer = torch.optim.Adam(model.parameters(), lr=params["lr"])
    epochs = params["epochs"]
    for epoch in range(1, epochs + 1):
        model.train()
        total = 0.0
        for rows in torch.randperm(len(y), device=x.device).split(params["batch_size"]):
            optimizer.zero_grad()
            batch_loss = loss(model(x[rows]), y[rows])
            batch_loss.backward()
            optimizer.step()
            total += batch_loss.item() * len(rows)
        if not math.isfinite(total):
            raise BadInput(f"the training loss diverged in epoch {epoch}: try a smaller lr")
        model.eval()
        with torch.no_grad():
            validation_loss = loss(model(x_val), y_val).item()
        emit({"event": "progress", "iteration": epoch, "total": epochs, "loss": total / len(y),
              "validationLoss": validation_loss})


def macro_f1(predicted: Tensor, truth: Tensor) -> float:
    """The mean over the classes predicted or true of 2 TP / (2 TP + FP + FN)."""
    classes = torch.cat([predicted, truth]).unique()
    hits = torch.stack([((predicted == c) & (truth == c)).sum() for c in classes])
    misses = torch.stack([((predicted == c) != (truth == c)).sum() for c in classes])
    return (2 * hits / (2 * hits + misses)).mean().item()


@torch.no_grad()
def metrics(model: nn.Module, x: Tensor, y: Tensor, label: dict[str, Any]) -> dict[str, float]:
    model.eval()
    out = model(x)
    if "classes" in label:
        predicted = out.argmax(1)
        found = {"accuracy": (predicted == y).double().mean().item(),
                 "log_loss": F.cross_entropy(out, y).item(), "macro_f1": macro_f1(predicted, y)}
    else:
        scale, shift = label["target_std"], label["target_mean"]
        truth = y.double() * scale + shift
        errors = out.squeeze(-1).double() * scale + shift - truth
        spread = (truth - truth.mean()).pow(2).sum()
        found = {"r2": (1 - errors.pow(2).sum() / spread).item(),
                 "rmse": errors.pow(2).mean().sqrt().item(), "mae": errors.abs().mean().item()}
    return {name: v for name, v in found.items() if math.isfinite(v)}


def main() -> None:
    if env("KUBETRAIN_CONTRACT") != "1":
        raise BadInput(f"this program speaks contract 1, not {env('KUBETRAIN_CONTRACT')}")
    classification, seed = env("KUBETRAIN_TASK") == "classification", int(env("KUBETRAIN_SEED"))
    params = parse_params(env("KUBETRAIN_PARAMS", "{}"))
    stop_on_sigterm()
    if "KUBETRAIN_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["KUBETRAIN_THREADS"]))
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"device: {device.type}{gpu}", flush=True)

    names, (x, x_val, y, y_val) = load(classification, seed)
    labels, labels_val, label_info = encode_labels(classification, y, y_val)
    features, features_val, feature_info = standardize(x, x_val)
    data = [t.to(device) for t in (features, features_val, labels, labels_val)]
    outputs = len(label_info["classes"]) if classification else 1
    model = nn.Sequential(nn.Linear(len(names), params["hidden"]), nn.ReLU(),
                          nn.Linear(params["hidden"], params["hidden"]), nn.ReLU(),
                          nn.Linear(params["hidden"], outputs)).to(device)
    loss: Loss = (F.cross_entropy if classification
                  else lambda out, target: F.mse_loss(out.squeeze(-1), target))
    print(f"training on {len(y)} rows, validating on {len(y_val)}", flush=True)
    fit(model, loss, data, params)
    emit({"event": "metrics", "metrics": metrics(model, data[1], data[3], label_info)})

    model_dir = Path(env("KUBETRAIN_MODEL_DIR"))
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, model_dir / "model.pt")
    preprocessing = {"task": env("KUBETRAIN_TASK"), "feature_columns": names, **feature_info,
                     **label_info, "hidden": params["hidden"]}
    (model_dir / "preprocessing.json").write_text(json.dumps(preprocessing, indent=2))


if __name__ == "__main__":
    try:
        main()
    except BadInput as problem:
        print(problem, file=sys.stderr, flush=True)
        sys.exit(EXIT_BAD_INPUT)
