"""Event-driven convolution against the dense paths, by input density: where `ops.conv.EVENT_DENSITY` belongs.

    python bench/bench_event_conv.py                      # the 3×3 layers of the presets, T·B = 64
    python bench/bench_event_conv.py --rates 0.05 0.1 0.15 0.2 0.3 --batch 128 --reps 9
    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python bench/bench_event_conv.py   # on one thread

Each row is one layer shape (float32 weights, random spikes at each rate, no graph): the forward on the
events (`kernels.event_conv2d`) and the dense one (Winograd for 3×3, im2col or the 1×1 GEMMs otherwise)
run interleaved, one call of each per round after a warm-up, and the table gives the ratio of their
median times, dense / events: above 1 the events are faster.  `--pointwise` adds the 1×1 layers, which
the library keeps on their GEMMs (`ops/event_conv.md`).
"""
from __future__ import annotations

import argparse
import statistics
import time

import minisnn  # first, so its thread settings apply
import numpy as np

from minisnn.ops import conv

# (C, O, H = W, kernel): Spikformer's SPS at dim 128 and 384, QKFormer's and MSViT's stems at dim 128
LAYERS = [(16, 32, 32, 3), (32, 64, 32, 3), (64, 64, 32, 3), (128, 128, 16, 3), (96, 192, 32, 3), (384, 384, 8, 3)]
POINTWISE = [(32, 128, 32, 1), (128, 32, 32, 1), (256, 64, 16, 1), (512, 128, 8, 1)]


def forward(x, w, events: bool):
    """conv2d_forward on the events (events=True) or on the dense path; stride 1, 'same' padding."""
    saved = conv.EVENT_DENSITY, conv.takes_events
    conv.EVENT_DENSITY, conv.takes_events = (1.0, lambda geo: True) if events else (0.0, saved[1])
    try:
        return conv.conv2d_forward(x, w, None, (1, 1), (w.shape[2] // 2,) * 2)
    finally:
        conv.EVENT_DENSITY, conv.takes_events = saved


def ratio(x, w, reps: int) -> float:
    """Median dense time / median event time, interleaved."""
    times = {True: [], False: []}
    for events in times:
        forward(x, w, events)                          # warm-up (and Numba's compile)
    for _ in range(reps):
        for events in times:
            start = time.perf_counter()
            forward(x, w, events)
            times[events].append(time.perf_counter() - start)
    return statistics.median(times[False]) / statistics.median(times[True])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2, 0.3])
    p.add_argument("--batch", type=int, default=64, help="images per call (T·B)")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--pointwise", action="store_true", help="also the 1×1 layers")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print(f"dense / events, median of {args.reps} interleaved calls, {args.batch} images, float32; "
          f"the library's EVENT_DENSITY is {conv.EVENT_DENSITY}")
    print(f"{'layer':<24}" + "".join(f"{r:>8.2f}" for r in args.rates))
    for c, o, size, k in LAYERS + (POINTWISE if args.pointwise else []):
        w = (rng.standard_normal((o, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
        cells = []
        for rate in args.rates:
            x = (rng.random((args.batch, c, size, size)) < rate).astype(np.float32)
            cells.append(ratio(x, w, args.reps))
        print(f"{f'{c}->{o} {k}x{k} on {size}x{size}':<24}" + "".join(f"{v:>8.2f}" for v in cells), flush=True)


if __name__ == "__main__":
    main()
