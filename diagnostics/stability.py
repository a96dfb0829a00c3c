"""Ownership history of the probes across log rows (host side, numpy): flip rates, A -> B -> A returns,
cumulative flips and the adjusted Rand index of consecutive partitions. Shapes: S seeds, M probes, K candidates.
"""

from __future__ import annotations

import numpy as np


def adjusted_rand_index(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Adjusted Rand index between two labelings (M,) of the same items (1.0 = same partition)."""
    _, a = np.unique(labels_a, return_inverse=True)
    _, b = np.unique(labels_b, return_inverse=True)
    contingency = np.zeros((a.max() + 1, b.max() + 1), np.int64)
    np.add.at(contingency, (a, b), 1)
    pairs = lambda x: (x * (x - 1) // 2).sum()
    together = pairs(contingency)
    rows, cols, total = pairs(contingency.sum(1)), pairs(contingency.sum(0)), pairs(np.array([len(a)]))
    expected = rows * cols / total if total else 0.0
    best = (rows + cols) / 2
    if best == expected:  # both partitions trivial (all one group, or all singletons)
        return 1.0
    return float((together - expected) / (best - expected))


class OwnershipTracker:
    """History of winners per probe, updated once per log interval."""

    def __init__(self, num_seeds: int, num_probes: int, num_candidates: int):
        self.previous_winner: np.ndarray | None = None  # (S, M)
        self.previous_nearest: np.ndarray | None = None
        self.owned_before = np.zeros((num_seeds, num_probes, num_candidates), bool)  # ever owned, any interval
        self.flips_total = np.zeros((num_seeds, num_probes), np.int64)

    def return_chance(self) -> np.ndarray:
        """(S, M): the chance that a flip now goes back to a former owner if it went to a uniformly drawn
        candidate other than the current owner: former owners other than the current one / (K - 1)
        (0 with one candidate, which cannot flip)."""
        others = self.owned_before.shape[-1] - 1
        return (self.owned_before.sum(-1) - 1) / others if others else np.zeros(self.owned_before.shape[:2])

    def update(self, winner: np.ndarray, nearest: np.ndarray) -> dict[str, np.ndarray]:
        """Record this row's winners and nearest candidates (S, M); returns flip_rate, nearest_flip_rate,
        return_rate, return_rate_chance, winner_ari (S,) (NaN at the first row; meanings: diagnostics.quantities)
        and flips_total (S, M)."""
        winner, nearest = np.asarray(winner), np.asarray(nearest)
        seeds, probes = winner.shape
        if self.previous_winner is None:
            nan = np.full(seeds, np.nan)
            result = dict(flip_rate=nan, nearest_flip_rate=nan.copy(), return_rate=nan.copy(),
                          return_rate_chance=nan.copy(), winner_ari=nan.copy())
        else:
            flipped = winner != self.previous_winner
            returned = flipped & np.take_along_axis(self.owned_before, winner[..., None], axis=-1)[..., 0]
            self.flips_total += flipped
            result = dict(flip_rate=flipped.mean(1), nearest_flip_rate=(nearest != self.previous_nearest).mean(1),
                          return_rate=returned.mean(1),
                          return_rate_chance=np.where(flipped, self.return_chance(), 0.0).mean(1),
                          winner_ari=np.array([adjusted_rand_index(self.previous_winner[s], winner[s])
                                               for s in range(seeds)]))
        np.put_along_axis(self.owned_before, winner[..., None], True, axis=-1)
        self.previous_winner, self.previous_nearest = winner, nearest
        return {**result, "flips_total": self.flips_total.copy()}
