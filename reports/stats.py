"""Interval estimates with rliable: every interval is a 95% percentile stratified bootstrap, one call per quantity,
each preceded by `numpy.random.seed(seed)` (rliable's `random_state` does not reach its resampling). To redo any
number: `np.random.seed(seed); rliable.library.get_interval_estimates({"x": scores}, func, reps=reps)`, `func` as
named in report.json. Below two runs intervals are NaN rather than drawn with zero width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.stats
from rliable import library as rly
from rliable import metrics

DEFAULT_REPS = 2000  # bootstrap repetitions
DEFAULT_SEED = 0  # numpy global seed set before each rliable call
CONFIDENCE = 0.95
OPTIMALITY_THRESHOLD = 1.0  # scores are normalised so that 1 is the best attainable (success rate; modes: best mode)
PROFILE_TAUS = np.linspace(0.0, 1.0, 51)  # score thresholds of the performance profiles

AGGREGATES = ("IQM", "Mean", "Median", "Optimality gap")  # the order `aggregate_scores` returns them in
# The smallest difference in score (IQM of one run against another's) the report calls material: 5 points
# of normalised score (success rate; on the modes family adjacent modes' values differ by 0.15 to 0.25). The
# paper's seed-to-seed spread is 2 to 5 points, so a smaller gap is not a finding even when intervals part.
SCORE_MATERIAL = 0.05


def aggregate_scores(scores: np.ndarray) -> np.ndarray:
    """IQM, mean, median and optimality gap (threshold 1) of a (runs, tasks) matrix; shape (4,)."""
    return np.array([metrics.aggregate_iqm(scores), metrics.aggregate_mean(scores),
                     metrics.aggregate_median(scores),
                     metrics.aggregate_optimality_gap(scores, OPTIMALITY_THRESHOLD)])


def probability_of_improvement_batched(scores_x: np.ndarray, scores_y: np.ndarray) -> np.ndarray:
    """P(X > Y) averaged over tasks, for R resamples at once: (R, runs_x, tasks), (R, runs_y, tasks) -> (R, 1).
    Per task the Mann-Whitney U of X over Y / (runs_x * runs_y), as rliable computes it one task at a time."""
    x, y = scores_x[:, :, None, :], scores_y[:, None, :, :]
    per_task = (x > y).mean(axis=(1, 2)) + 0.5 * (x == y).mean(axis=(1, 2))  # (R, tasks)
    return per_task.mean(axis=-1, keepdims=True)


def iqm_per_step_batched(scores: np.ndarray) -> np.ndarray:
    """IQM over runs and tasks at each evaluation step, for R resamples at once: (R, runs, tasks, E) -> (R, E)."""
    r, n, m, e = scores.shape
    return scipy.stats.trim_mean(scores.reshape(r, n * m, e), proportiontocut=0.25, axis=1)


def seed_mean_batched(values: np.ndarray) -> np.ndarray:
    """Mean over seeds (and the singleton task axis), for R resamples at once: (R, seeds, 1, T) -> (R, T)."""
    return values.mean(axis=(1, 2))


def iqm_batched(scores: np.ndarray) -> np.ndarray:
    """IQM over all runs and tasks as rliable's aggregate_iqm takes it: (R, runs, tasks) -> (R, 1)."""
    return scipy.stats.trim_mean(scores.reshape(scores.shape[0], -1), proportiontocut=0.25, axis=1)[:, None]


def iqm_difference_batched(scores_x: np.ndarray, scores_y: np.ndarray) -> np.ndarray:
    """IQM(X) - IQM(Y), for R resamples at once: (R, runs_x, tasks), (R, runs_y, tasks) -> (R, 1)."""
    return iqm_batched(scores_x) - iqm_batched(scores_y)


def mean_difference_batched(values_x: np.ndarray, values_y: np.ndarray) -> np.ndarray:
    """Mean of X minus mean of Y over seeds (and the 1-task axis): (R, seeds_x, 1), (R, seeds_y, 1) -> (R, 1)."""
    return (values_x.mean(axis=(1, 2)) - values_y.mean(axis=(1, 2)))[:, None]


def score_distribution_batched(scores: np.ndarray) -> np.ndarray:
    """Performance profile: the fraction of runs (over all tasks) scoring above each of PROFILE_TAUS, for R
    resamples at once (as rliable's create_performance_profile): (R, runs, tasks) -> (R, len(PROFILE_TAUS))."""
    return (scores[..., None] > PROFILE_TAUS).mean(axis=(1, 2))


def one_sample(batched: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """A batched statistic of one sample (what rliable calls): f(x, ...) = batched(x[None], ...)[0]."""
    return lambda *arrays: batched(*(a[None] for a in arrays))[0]


probability_of_improvement = one_sample(probability_of_improvement_batched)  # (runs_x, tasks), (runs_y, tasks) -> (1,)
iqm_per_step = one_sample(iqm_per_step_batched)  # (runs, tasks, E) -> (E,)
seed_mean = one_sample(seed_mean_batched)  # (seeds, 1, T) -> (T,)
score_distribution = one_sample(score_distribution_batched)  # (runs, tasks) -> (len(PROFILE_TAUS),)


@dataclass(frozen=True)
class Interval:
    """Point estimates (Q,) with lower and upper bounds (Q,), NaN where no interval exists."""

    point: np.ndarray
    low: np.ndarray
    high: np.ndarray
    runs: int  # runs (seeds) behind the estimate; the smaller side for a comparison

    @property
    def has_interval(self) -> bool:
        return bool(np.isfinite(self.low).all())

    def at(self, i: int) -> tuple[float, float, float]:
        return float(self.point[i]), float(self.low[i]), float(self.high[i])

    def minus(self, level: float) -> Interval:
        """The same estimate against a fixed level: point and bounds minus `level`."""
        return Interval(self.point - level, self.low - level, self.high - level, self.runs)


def no_interval(point: np.ndarray, runs: int) -> Interval:
    """`point` without bounds (NaN): too few runs to resample."""
    return Interval(point, np.full_like(point, np.nan), np.full_like(point, np.nan), runs)


def bootstrap(scores: np.ndarray | tuple[np.ndarray, np.ndarray], func: Callable[..., np.ndarray], reps: int,
              seed: int) -> Interval:
    """func's point estimate and 95% stratified bootstrap interval (rliable), numpy seeded first. `scores`: one
    array (runs, tasks, ...) or a pair, resampled independently. Fewer than 2 runs: no interval."""
    pair = isinstance(scores, tuple)
    runs = min(s.shape[0] for s in scores) if pair else scores.shape[0]
    point = np.atleast_1d(np.asarray(func(*scores) if pair else func(scores), np.float64))
    if runs < 2:
        return no_interval(point, runs)
    np.random.seed(seed)
    points, intervals = rly.get_interval_estimates({"x": list(scores) if pair else scores}, func, reps=reps,
                                                   confidence_interval_size=CONFIDENCE)
    interval = np.asarray(intervals["x"], np.float64).reshape(2, -1)
    return Interval(np.atleast_1d(np.asarray(points["x"], np.float64)), interval[0], interval[1], runs)


def batched_bootstrap(scores: np.ndarray | tuple[np.ndarray, ...], batched_func: Callable[..., np.ndarray],
                      reps: int, seed: int) -> Interval:
    """`bootstrap` for a statistic of all resamples at once: batched_func(x (R, runs, tasks, ...), ...) -> (R, Q).
    It draws the very indices rliable draws (per repetition one (runs, tasks, ...) draw per array, in order) and
    takes arch's percentile interval, so it equals `bootstrap(scores, func, reps, seed)` for
    func(*x) = batched_func(*x[None])[0], 20 to 50 times faster."""
    arrays = scores if isinstance(scores, tuple) else (scores,)
    runs = min(a.shape[0] for a in arrays)
    point = np.asarray(batched_func(*(a[None] for a in arrays))[0], np.float64).reshape(-1)
    if runs < 2:
        return no_interval(point, runs)
    np.random.seed(seed)
    if len({a.shape[0] for a in arrays}) == 1:  # one bound: a single draw yields the same stream, faster
        flat = np.random.choice(runs, (reps, sum(a.size for a in arrays)), replace=True)
        ends = np.cumsum([a.size for a in arrays])
        stacked = [flat[:, end - a.size:end].reshape(reps, *a.shape) for a, end in zip(arrays, ends)]
    else:
        per_rep = [[np.random.choice(a.shape[0], a.shape, replace=True) for a in arrays] for _ in range(reps)]
        stacked = [np.stack([rep[i] for rep in per_rep]) for i in range(len(arrays))]
    resampled = []
    for a, indices in zip(arrays, stacked):  # indices (R, runs, tasks, ...)
        strata = np.ogrid[tuple(slice(n) for n in a.shape)][1:]  # the other axes, kept as they are
        resampled.append(a[(indices, *(s[None] for s in strata))])
    estimates = np.asarray(batched_func(*resampled), np.float64).reshape(reps, -1)
    alpha = (1.0 - CONFIDENCE) / 2.0  # as arch computes the percentile interval
    low, high = np.percentile(estimates, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return Interval(point, low, high, runs)


def seed_interval(values: np.ndarray, reps: int, seed: int) -> Interval:
    """Mean over seeds with a bootstrap interval over seeds, for a diagnostic: values (seeds, T) -> (T,)."""
    return batched_bootstrap(np.asarray(values, np.float64)[:, None, :], seed_mean_batched, reps, seed)


def difference_interval(x: np.ndarray, y: np.ndarray, reps: int, seed: int) -> Interval:
    """Mean of x (seeds_x,) minus mean of y (seeds_y,), independent seeds, each side resampled; (1,)."""
    pair = (np.asarray(x, np.float64)[:, None], np.asarray(y, np.float64)[:, None])
    return batched_bootstrap(pair, mean_difference_batched, reps, seed)


def paired_difference_interval(before: np.ndarray, after: np.ndarray, reps: int, seed: int) -> Interval:
    """Mean over the same seeds of after - before (seeds,), e.g. a quantity's late minus its early value; (1,)."""
    return seed_interval((np.asarray(after, np.float64) - np.asarray(before, np.float64))[:, None], reps, seed)


# The three readings of a difference, too few runs, no threshold. docs/reading-the-report.md says why MIN_RUNS is 5.
MATERIAL, NEGLIGIBLE, INCONCLUSIVE, TOO_FEW, NOT_JUDGED = ("material", "negligible", "inconclusive", "too few runs",
                                                           "not judged")
MIN_RUNS = 5  # runs (seeds) per side below which an interval is not informative and no verdict is given


def verdict(difference: Interval, threshold: float | None, null: float = 0.0) -> str:
    """The reading of a (1,) difference from `null` (0.5 for a probability, 1 for a ratio) against null +- threshold
    (docs/reading-the-report.md); TOO_FEW below MIN_RUNS runs (or no interval), NOT_JUDGED without a threshold."""
    if threshold is None:
        return NOT_JUDGED
    if difference.runs < MIN_RUNS or not difference.has_interval:
        return TOO_FEW
    low, high = float(difference.low[0]) - null, float(difference.high[0]) - null
    if low > threshold or high < -threshold:
        return MATERIAL
    if low >= -threshold and high <= threshold:
        return NEGLIGIBLE
    return INCONCLUSIVE


def is_material(difference: Interval, threshold: float | None, null: float = 0.0) -> bool:
    return verdict(difference, threshold, null) == MATERIAL


def runs_to_settle(difference: Interval, threshold: float, null: float = 0.0) -> int | None:
    """The runs per side at which an INCONCLUSIVE difference would be read material or negligible, if its point
    stayed and its interval narrowed as 1/sqrt(runs); None where no count would (the point on the threshold)."""
    point = float(difference.point[0]) - null
    half_width = (float(difference.high[0]) - float(difference.low[0])) / 2
    room = abs(abs(point) - threshold)  # how far the point sits from the threshold, either side
    if room <= 1e-12 * max(1.0, threshold) or not np.isfinite(half_width):
        return None
    return max(difference.runs + 1, int(np.ceil(difference.runs * (half_width / room) ** 2)))
