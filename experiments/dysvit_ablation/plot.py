"""Validation accuracy per epoch of the ablation runs: `python plot.py RESULTS_DIR [OUT.png]`.

Reads each run's `<run>/metrics.jsonl` (written by minisnn.torch.train, as run_all.sh lays them out) or,
failing that, `<run>.log`: JSON lines with "epoch" and "val_acc" (the recorded logs in results/).
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {"dynamic": "learned per-token slope + stability protocol",
          "static": "fixed slope 2 + stability protocol",
          "none_dynamic": "learned slope, no stability protocol",
          "none_static": "fixed slope 2, no stability protocol (the card's baseline)"}


def main(folder, out):
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, label in LABELS.items():
        path = Path(folder) / name / "metrics.jsonl"
        if not path.exists():
            path = Path(folder) / f"{name}.log"
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
        ax.plot([r["epoch"] for r in rows], [100 * r["val_acc"] for r in rows], label=label)
    ax.axhline(73.23, color="gray", ls=":", lw=1, label="the card: 73.23 % (test; its epochs are not stated)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Dy-SViT dim 256, depth 4, T=1: same protocol, 30 epochs", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    here = Path(__file__).parent
    main(sys.argv[1] if len(sys.argv) > 1 else here / "results",
         sys.argv[2] if len(sys.argv) > 2 else here / "ablation_curves.png")
