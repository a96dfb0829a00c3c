"""How well a per-probe diagnostic orders probes as the task's ground truth does (host side, numpy and scipy).

`support_rank_correlation`: the rank correlation (Spearman) of support_dist (the deployed action's distance to
the nearest training pair) against minus behavior_logp (the behaviour's true log-density at the same deployed
action), per seed over every logged (row, probe) pair: 1 when distance orders the deployed actions exactly as
the density does, reversed. The bar it is held to is in diagnostics.quantities.CALIBRATIONS.
Shapes: S seeds, T logged rows, M probes.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def support_rank_correlation(support_dist: np.ndarray, behavior_logp: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of support_dist (S, T, M) against -behavior_logp (S, T, M), per seed over
    its T*M (row, probe) pairs: (S,). Ties get average ranks.

    Pairs where either value is NaN or infinite (rows a run did not log, padded in a combined log) are left out;
    `finite_pairs` counts the pairs used. NaN for a seed with fewer than two such pairs, or whose values of
    either quantity are all equal (e.g. every deployed action beyond the support: each log-density at the
    floor), where a rank correlation is undefined. ValueError when the shapes differ or are not (S, T, M).
    """
    distance, logp = np.asarray(support_dist, np.float64), np.asarray(behavior_logp, np.float64)
    if distance.shape != logp.shape or distance.ndim != 3:
        raise ValueError(f"support_dist and behavior_logp must both be (seeds, rows, probes); got {distance.shape} "
                         f"and {logp.shape}")
    correlations = np.full(distance.shape[0], np.nan)
    for seed, (d, p) in enumerate(zip(distance.reshape(len(distance), -1), logp.reshape(len(logp), -1))):
        finite = np.isfinite(d) & np.isfinite(p)
        d, p = d[finite], p[finite]
        if d.size < 2 or np.ptp(d) == 0 or np.ptp(p) == 0:
            continue
        ranks_d, ranks_p = rankdata(d), rankdata(-p)
        correlations[seed] = np.corrcoef(ranks_d, ranks_p)[0, 1]
    return correlations


def finite_pairs(support_dist: np.ndarray, behavior_logp: np.ndarray) -> np.ndarray:
    """The (row, probe) pairs behind each seed's support_rank_correlation: (S,) counts of pairs where both are
    finite."""
    both = np.isfinite(np.asarray(support_dist, np.float64)) & np.isfinite(np.asarray(behavior_logp, np.float64))
    return both.reshape(len(both), -1).sum(axis=1)
