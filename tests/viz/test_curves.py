"""training_curves and load_history: dict lists, .jsonl and .csv metrics files."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from minisnn.viz import load_history, training_curves

from .helpers import check_png, plot_axes

KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")


def _history(n=12, val_every=3):
    rows = []
    for e in range(n):
        row = {"epoch": e, "train_loss": 2.3 / (1 + e), "train_acc": 1 - 0.9 / (1 + e), "lr": 1e-3 * (1 - e / n)}
        if e % val_every == 0:
            row.update(val_loss=2.5 / (1 + e), val_acc=0.8 - 0.7 / (1 + e) + (0.05 if e == 6 else 0.0))
        rows.append(row)
    return rows


def _line(ax, label):
    (ln,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata())


def _check_panels(fig, rows):
    axes = plot_axes(fig)
    assert len(axes) == 3
    assert [ax.get_ylabel() for ax in axes] == ["loss", "accuracy", "learning rate"]
    assert all(ax.get_xlabel() == "epoch" for ax in axes)
    for ax, key in ((axes[0], "train_loss"), (axes[0], "val_loss"), (axes[1], "train_acc"),
                    (axes[1], "val_acc"), (axes[2], "lr")):
        kept = [r for r in rows if r.get(key) not in (None, "")]
        x, y = _line(ax, key)
        np.testing.assert_allclose(x, [float(r["epoch"]) for r in kept])
        np.testing.assert_allclose(y, [float(r[key]) for r in kept])
    return axes


def test_training_curves_from_dicts(tmp_path):
    rows = _history()
    path = tmp_path / "curves.png"
    fig = training_curves(rows, path=path, title="spikformer")
    check_png(path)
    axes = _check_panels(fig, rows)
    val = [r for r in rows if "val_acc" in r]
    best = max(val, key=lambda r: r["val_acc"])
    assert best["epoch"] == 6
    assert axes[1].get_title() == f"accuracy (best val {best['val_acc']:.4g} @ epoch 6)"
    assert fig._suptitle.get_text() == "spikformer"


def test_training_curves_from_jsonl(tmp_path):
    rows = _history()
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert load_history(path) == rows
    _check_panels(training_curves(str(path)), rows)


def test_training_curves_from_csv(tmp_path):
    rows = _history()
    path = tmp_path / "metrics.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=KEYS)
        writer.writeheader()
        writer.writerows(rows)
    loaded = load_history(path)
    assert len(loaded) == len(rows) and loaded[1]["val_acc"] == ""
    _check_panels(training_curves(path), loaded)


def test_missing_panels_say_no_data():
    axes = plot_axes(training_curves([{"epoch": 0, "train_loss": 1.0}, {"epoch": 1, "train_loss": 0.5}]))
    assert [t.get_text() for t in axes[1].texts] == ["no accuracy data"]
    assert [t.get_text() for t in axes[2].texts] == ["no learning rate data"]
    assert axes[1].get_title() == "accuracy"


@pytest.mark.parametrize(
    "history, err, match",
    [
        ([], ValueError, "empty"),
        ([{"train_loss": 1.0}], ValueError, "no 'epoch'"),
        ([{"epoch": 0, "train_loss": "abc"}], ValueError, "expected a number"),
        ([3.0], TypeError, "must be a dict"),
        (42, TypeError, "list of dicts or a path"),
    ],
)
def test_training_curves_rejects_bad_history(history, err, match):
    with pytest.raises(err, match=match):
        training_curves(history)


def test_load_history_errors(tmp_path):
    bad = tmp_path / "metrics.jsonl"
    bad.write_text('{"epoch": 0}\n{"epoch": 1,\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2: not valid JSON"):
        load_history(bad)
    arr = tmp_path / "list.jsonl"
    arr.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match="JSON object per line"):
        load_history(arr)
    other = tmp_path / "metrics.txt"
    other.write_text("epoch\n")
    with pytest.raises(ValueError, match=".jsonl or .csv"):
        load_history(other)
    with pytest.raises(FileNotFoundError, match="not found"):
        training_curves(tmp_path / "absent.jsonl")
