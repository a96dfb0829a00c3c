"""How well a per-probe diagnostic orders probes as the task's ground truth does (host side, numpy and scipy);
the bar it is held to is in diagnostics.quantities. Shapes: S seeds, T logged rows, M probes.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def rank_correlation(estimate: np.ndarray, truth: np.ndarray, decreasing: bool = False) -> np.ndarray:
    """Spearman's rank correlation of a per-probe estimate (S, T, M) against its truth (S, T, M) (against minus the
    truth where `decreasing`: a distance against a log-density), per seed over its finite (row, probe) pairs
    (finite_pairs): (S,). NaN where undefined (under two pairs, or constant values).
    ValueError when the shapes differ or are not (S, T, M)."""
    distance, logp = np.asarray(estimate, np.float64), np.asarray(truth, np.float64)
    if distance.shape != logp.shape or distance.ndim != 3:
        raise ValueError(f"an estimate and its truth must both be (seeds, rows, probes); got {distance.shape} "
                         f"and {logp.shape}")
    correlations = np.full(distance.shape[0], np.nan)
    for seed, (d, p) in enumerate(zip(distance.reshape(len(distance), -1), logp.reshape(len(logp), -1))):
        finite = np.isfinite(d) & np.isfinite(p)
        d, p = d[finite], p[finite]
        if d.size < 2 or np.ptp(d) == 0 or np.ptp(p) == 0:
            continue
        ranks_d, ranks_p = rankdata(d), rankdata(-p if decreasing else p)
        correlations[seed] = np.corrcoef(ranks_d, ranks_p)[0, 1]
    return correlations


def finite_pairs(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The (row, probe) pairs behind each seed's rank_correlation: (S,) counts of pairs both finite."""
    both = np.isfinite(np.asarray(estimate, np.float64)) & np.isfinite(np.asarray(truth, np.float64))
    return both.reshape(len(both), -1).sum(axis=1)
