"""Solutions to the exercises of notebook 12 (when time matters)."""
from collections import defaultdict

import numpy as np


# Exercise 1: the brightness change once with each sign; frame −1 is dark.
def polarity_events(video, threshold=0.5):
    video = np.asarray(video)
    change = video - np.concatenate([np.zeros_like(video[:1]), video[:-1]])
    return np.stack([change > threshold, -change > threshold], axis=1).astype(np.float32)


# Exercise 2: causal, and cut at the start of t's window: the steps ⌊t/k⌋·k .. t.
def gradient_reach(T, k, t):
    steps = np.arange(T)
    return (steps >= t // k * k) & (steps <= t)


# Exercise 3: enumerate every sample with its probability, group by the summed ON-event frame, and let each
# frame vote for its most likely direction.  Right and left share every frame half and half: 0.5.
def t1_ceiling(grid=8, T=12, periods=(1, 2, 3)):
    steps = np.array([(0, 1), (0, -1), (1, 0), (-1, 0)])
    votes = defaultdict(lambda: np.zeros(len(steps)))
    for direction, step in enumerate(steps):
        for period in periods:
            for phase in range(period):
                for start in np.ndindex(grid, grid):
                    moves = (np.arange(T) + phase) // period
                    pos = (np.array(start) + moves[:, None] * step) % grid
                    video = np.zeros((T, grid, grid))
                    video[np.arange(T), pos[:, 0], pos[:, 1]] = 1.0
                    events = polarity_events(video)[:, 0]
                    votes[events.sum(axis=0).tobytes()][direction] += 1.0 / (4 * grid * grid * len(periods) * period)
    return sum(v.max() for v in votes.values())


CHECKED = {
    "check_12_polarity_events": (polarity_events,),
    "check_12_gradient_reach": (gradient_reach,),
    "check_12_t1_ceiling": (t1_ceiling(),),
}
