"""Every number the report shows, computed once from a results folder (reports.runs.Results), each with a 95%
stratified bootstrap interval (reports.stats); diverged seeds are left out of every diagnostic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from diagnostics.calibration import finite_pairs, rank_correlation
from diagnostics.quantities import (
    CALIBRATIONS,
    DIFFERENCE,
    EVALUATION,
    PROBE_MEANS,
    QUANTITIES,
    REPORTING,
    Calibration,
    derive,
    operands,
    reported,
)
from reports import stats
from reports.runs import Results, ScoreMatrix, eval_curves, score_matrix

REFERENCE_ABLATION = "dynamic"  # the paper's method: probabilities of improvement are of it over the others
BASELINE_WITHOUT_K = "fql"  # runs once per task (K=1); compared with dynamic at every K


def is_baseline(label: str) -> bool:
    """Whether an ablation label is the baseline without K's (fql, or one of its grid points: "fql alpha=3")."""
    return label.partition(" ")[0] == BASELINE_WITHOUT_K  # (from the label: group_label has no Results.point)


DIAGNOSTICS = reported("summary")  # quantities summarised over seeds, with labels and units (diagnostics.quantities)
PER_PROBE = {name: q.label for name, q in reported("per_probe").items()}  # derived from flips_total
TREND_ROWS = 3  # logged values a quantity needs before early (the first) and late (the last third) are compared:
# with fewer, late includes or borders the first value and "settles" or "drifts" cannot be told
CALIBRATED = tuple(dict.fromkeys(PROBE_MEANS.get(name, name) for c in CALIBRATIONS
                                 for name in (c.estimate, c.truth, c.scale) if name))


@dataclass(frozen=True)
class Curve:
    """A quantity against a step axis: steps (T,), and its Interval over seeds or runs."""

    steps: np.ndarray
    estimate: stats.Interval


@dataclass(frozen=True)
class DiagnosticSummary:
    """One quantity of one run (task, ablation, K): its curve and early/late values over seeds."""

    curve: Curve
    early: stats.Interval  # (1,) the first logged value
    late: stats.Interval  # (1,) mean over the last third of logged rows
    seeds: tuple[int, ...]
    early_values: np.ndarray  # (seeds,) each seed's early value
    late_values: np.ndarray  # (seeds,) each seed's late value

    @property
    def rows(self) -> int:
        """Logged values behind the curve (steps at which every seed logged it)."""
        return int(self.curve.steps.size)

    @property
    def has_trend(self) -> bool:
        """Whether early and late are far enough apart to compare (TREND_ROWS)."""
        return self.rows >= TREND_ROWS


@dataclass(frozen=True)
class CalibrationSummary:
    """One estimate beside its truth (diagnostics.quantities.Calibration) in one run, over its healthy seeds."""

    calibration: Calibration
    estimate: DiagnosticSummary  # a per-probe quantity's by its per-row mean (PROBE_MEANS)
    truth: DiagnosticSummary
    agreement: stats.Interval  # (1,) mean over seeds of |late estimate - late truth|, or of the rank correlation
    agreement_values: np.ndarray  # (seeds,) NaN where a rank correlation is undefined
    difference: stats.Interval | None  # (1,) late estimate - late truth, signed (DIFFERENCE only)
    pairs: np.ndarray  # (seeds,) the (row, probe) pairs behind each rank correlation (RANK_CORRELATION only)
    seeds: tuple[int, ...]
    left_out: tuple[int, ...]  # the run's diverged seeds, left out as from every diagnostic

    @property
    def undefined(self) -> int:
        """Seeds whose agreement is undefined (a rank correlation over values that are all equal)."""
        return int(np.isnan(self.agreement_values).sum())


@dataclass(frozen=True)
class GroupScores:
    """Score statistics of one (ablation, K) over its tasks."""

    matrix: ScoreMatrix
    aggregates: stats.Interval  # (4,) in stats.AGGREGATES order
    profile: stats.Interval  # (len(PROFILE_TAUS),)
    sample_efficiency: Curve | None  # None without shared evaluation steps


@dataclass(frozen=True)
class TaskScores:
    """One (task, ablation, K) over seeds: mean with interval, standard deviation, seeds, diverged."""

    mean: stats.Interval  # (1,)
    std: float
    seeds: tuple[int, ...]  # seeds with a score
    not_scored: tuple[int, ...]  # diverged or never evaluated


@dataclass(frozen=True)
class Matched:
    """What one comparison (x, kx, y, ky) rests on: the tasks both ran, the tasks only one side ran (left out),
    and each side's IQM over the common tasks (1,): like with like, whatever else either side ran."""

    tasks: tuple[str, ...]
    left_out: tuple[str, ...]
    iqm_x: stats.Interval
    iqm_y: stats.Interval


@dataclass(frozen=True)
class Analysis:
    reps: int
    seed: int
    groups: dict[tuple[str, int], GroupScores] = field(default_factory=dict)
    improvement: dict[tuple[str, int, str, int], stats.Interval] = field(default_factory=dict)  # (x, kx, y, ky)
    per_task: dict[tuple[str, str, int], TaskScores] = field(default_factory=dict)
    diagnostics: dict[tuple[str, str, str, int], DiagnosticSummary] = field(default_factory=dict)  # var, task, a, k
    score_difference: dict[tuple[str, int, str, int], stats.Interval] = field(default_factory=dict)  # IQM x - IQM y
    references: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> reference policy -> score
    matched: dict[tuple[str, int, str, int], Matched] = field(default_factory=dict)  # what each comparison rests on
    task_difference: dict[tuple[str, str, int, str, int], stats.Interval] = field(default_factory=dict)  # task, x,
    # kx, y, ky -> IQM x - IQM y over that task's seeds (comparisons over more than one task only)
    trends: dict[tuple[str, str, int], stats.Interval] = field(default_factory=dict)  # task, ablation, K -> the
    # score's change over the last third of its evaluations (learning_trend)
    calibrations: dict[tuple[str, str, int], tuple[CalibrationSummary, ...]] = field(default_factory=dict)  # task,
    # ablation, K -> the calibrations whose truth the run logged, in CALIBRATIONS order (runs without truth: absent)
    # the bootstraps the questions and the verdict summary share, computed once (init=False: a replace() starts afresh)
    memo: dict[tuple, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]


def analyse(results: Results, reps: int = stats.DEFAULT_REPS, seed: int = stats.DEFAULT_SEED) -> Analysis:
    analysis = Analysis(reps=reps, seed=seed)
    for ablation, k in results.groups:
        tasks = ran_tasks(results, ablation, k)
        for task in tasks:
            analysis.per_task[(task, ablation, k)] = task_scores(results.scores, task, ablation, k, reps, seed)
        matrix = score_matrix(results.scores, ablation, k, tasks)
        if matrix.num_runs:
            analysis.groups[(ablation, k)] = group_scores(results, matrix, reps, seed)
    for key in comparisons(results):
        compared = compare(results, analysis, *key)
        if compared is not None:
            analysis.improvement[key], analysis.score_difference[key], analysis.matched[key] = compared
            for task in analysis.matched[key].tasks if len(analysis.matched[key].tasks) > 1 else ():
                analysis.task_difference[(task, *key)] = task_difference(results, task, *key, reps, seed)
    for (task, ablation, k) in analysis.per_task:
        trend = learning_trend(results, task, ablation, k, reps, seed)
        if trend is not None:
            analysis.trends[(task, ablation, k)] = trend
    for run in results.runs:
        logged = run_diagnostics(results, run.task, run.ablation, run.k)
        for name in [*DIAGNOSTICS, *PER_PROBE]:
            summary = diagnostic_summary(logged, name, reps, seed)
            if summary is not None:
                analysis.diagnostics[(name, run.task, run.ablation, run.k)] = summary
        calibrated = run_calibrations(results, logged, run.task, run.ablation, run.k, reps, seed)
        if calibrated:
            analysis.calibrations[(run.task, run.ablation, run.k)] = calibrated
        if run.reference_levels:  # (every run of a task records the same levels: its config.json)
            analysis.references.setdefault(run.task, run.reference_levels)
    return analysis


def ran_tasks(results: Results, ablation: str, k: int) -> list[str]:
    return [t for t in results.tasks if results.run(t, ablation, k) is not None]


def comparisons(results: Results) -> list[tuple[str, int, str, int]]:
    """(dynamic, K, other, K') pairs: every other variant at the same K and grid point, and fql at each of its."""
    pairs = []
    for label, k in results.groups:
        if results.point(label).ablation != REFERENCE_ABLATION:
            continue
        point = results.point(label).settings
        for other, other_k in results.groups:
            if results.point(other).ablation == REFERENCE_ABLATION:
                continue
            if is_baseline(other) or (other_k == k and results.point(other).settings == point):
                pairs.append((label, k, other, other_k))
    return pairs


def compare(results: Results, analysis: Analysis, x: str, kx: int, y: str,
            ky: int) -> tuple[stats.Interval, stats.Interval, Matched] | None:
    """P(X > Y), IQM(X) - IQM(Y) and what they rest on, over the tasks both scored (None without one)."""
    return analysis.cached(("compare", x, kx, y, ky), lambda: _compare(results, x, kx, y, ky, analysis.reps,
                                                                         analysis.seed))


def _compare(results: Results, x: str, kx: int, y: str, ky: int, reps: int,
             seed: int) -> tuple[stats.Interval, stats.Interval, Matched] | None:
    ran_x, ran_y = set(ran_tasks(results, x, kx)), set(ran_tasks(results, y, ky))
    tasks = sorted(ran_x & ran_y)
    if not tasks:
        return None
    mx, my = score_matrix(results.scores, x, kx, tasks), score_matrix(results.scores, y, ky, tasks)
    if not (mx.num_runs and my.num_runs):
        return None
    pair = (mx.scores, my.scores)
    return (stats.batched_bootstrap(pair, stats.probability_of_improvement_batched, reps, seed),
            stats.batched_bootstrap(pair, stats.iqm_difference_batched, reps, seed),
            Matched(tuple(tasks), tuple(sorted((ran_x | ran_y) - set(tasks))),
                    stats.batched_bootstrap(mx.scores, stats.iqm_batched, reps, seed),
                    stats.batched_bootstrap(my.scores, stats.iqm_batched, reps, seed)))


def task_difference(results: Results, task: str, x: str, kx: int, y: str, ky: int, reps: int,
                    seed: int) -> stats.Interval:
    """IQM(X) - IQM(Y) over one task's seeds (1,): the comparison's IQM difference, for that task alone."""
    pair = (score_matrix(results.scores, x, kx, [task]).scores, score_matrix(results.scores, y, ky, [task]).scores)
    return stats.batched_bootstrap(pair, stats.iqm_difference_batched, reps, seed)


def learning_trend(results: Results, task: str, ablation: str, k: int, reps: int, seed: int) -> stats.Interval | None:
    """Per seed, the score's change over the last third of evaluations (at least 2), with an interval over seeds;
    None with fewer than 3 evaluations. Material and positive: still rising; negligible: plateaued."""
    if "eval_score" not in results.logs:
        return None
    logs = results.logs
    scores = logs["eval_score"].where(logs["eval_counted"]) if "eval_counted" in logs else logs["eval_score"]
    scores = scores.sel(task=task, ablation=ablation, k=k)
    healthy = [s for s in run_seeds(results, task, ablation, k)[0] if s in scores["seed"].values]
    if not healthy:
        return None
    values = np.asarray(scores.sel(seed=healthy).transpose("seed", "eval_step").values, np.float64)
    counted = np.isfinite(values).all(axis=0)
    values = values[:, counted]
    if values.shape[1] < 3:
        return None
    first = values.shape[1] - max(2, int(np.ceil(values.shape[1] / 3)))  # the last third, at least 2 evaluations
    return stats.seed_interval((values[:, -1] - values[:, first])[:, None], reps, seed)


def group_scores(results: Results, matrix: ScoreMatrix, reps: int, seed: int) -> GroupScores:
    aggregates = stats.bootstrap(matrix.scores, stats.aggregate_scores, reps, seed)
    profile = stats.batched_bootstrap(matrix.scores, stats.score_distribution_batched, reps, seed)
    steps, curves = eval_curves(results.logs, matrix)
    efficiency = (Curve(steps, stats.batched_bootstrap(curves, stats.iqm_per_step_batched, reps, seed))
                  if steps.size else None)
    return GroupScores(matrix, aggregates, profile, efficiency)


def run_rows(table, task: str, ablation: str, k: int):
    """The score table's rows (one per seed) of one run."""
    return table[(table.task == task) & (table.ablation == ablation) & (table.k == k)]


def task_scores(table, task: str, ablation: str, k: int, reps: int, seed: int) -> TaskScores:
    rows = run_rows(table, task, ablation, k)
    scored = rows[np.isfinite(rows.score)]
    values = scored.score.to_numpy(np.float64)
    mean = stats.seed_interval(values[:, None], reps, seed) if values.size else stats.no_interval(np.full(1, np.nan), 0)
    std = float(np.std(values, ddof=1)) if values.size > 1 else float("nan")
    return TaskScores(mean, std, tuple(int(s) for s in scored.seed),
                      tuple(int(s) for s in rows[~np.isfinite(rows.score)].seed))


def run_diagnostics(results: Results, task: str, ablation: str, k: int) -> xr.Dataset:
    """The logged per-step quantities of a run's healthy (never diverged) seeds, read into memory."""
    healthy, _ = run_seeds(results, task, ablation, k)
    names = [n for n in dict.fromkeys([*DIAGNOSTICS, *operands(), *CALIBRATED, "mc_episode_length"])
             if n in results.logs]
    return results.logs[names].sel(task=task, ablation=ablation, k=k).sel(seed=list(healthy)).compute()


def one_step_episodes(logged: xr.Dataset) -> bool:
    """Whether the evaluation episodes of `logged` (a run's or a task's log) were all one step long: mc_episode_length
    1 wherever logged (False where it never was)."""
    if "mc_episode_length" not in logged:
        return False
    lengths = np.asarray(logged["mc_episode_length"].values, np.float64)
    lengths = lengths[np.isfinite(lengths)]
    return lengths.size > 0 and bool((lengths == 1).all())


def run_seeds(results: Results, task: str, ablation: str, k: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A run's healthy seeds (never diverged: every diagnostic statistic rests on them) and its diverged ones."""
    rows = run_rows(results.scores, task, ablation, k)
    return tuple(int(s) for s in rows[~rows.diverged].seed), tuple(int(s) for s in rows[rows.diverged].seed)


def run_calibrations(results: Results, logged: xr.Dataset, task: str, ablation: str, k: int, reps: int,
                     seed: int) -> tuple[CalibrationSummary, ...]:
    """Each calibration (CALIBRATIONS) whose estimate and truth the run logged, held against each other over
    the run's healthy seeds (`logged`: run_diagnostics); empty for a run whose task has no ground truth."""
    healthy, diverged = run_seeds(results, task, ablation, k)
    calibrated = []
    for calibration in CALIBRATIONS:
        if calibration.multi_step and one_step_episodes(logged):  # (the Monte-Carlo return is the truth there)
            continue
        estimate = diagnostic_summary(logged, PROBE_MEANS.get(calibration.estimate, calibration.estimate), reps, seed)
        truth = diagnostic_summary(logged, PROBE_MEANS.get(calibration.truth, calibration.truth), reps, seed)
        if estimate is None or truth is None:
            continue
        if calibration.measure == DIFFERENCE:
            signed = estimate.late_values - truth.late_values  # (seeds,): the same healthy seeds, late
            if calibration.scale:  # (in units of the scale: a NaN where it was not logged leaves the seed undefined)
                scale = diagnostic_summary(logged, calibration.scale, reps, seed)
                signed = signed / np.abs(scale.late_values) if scale is not None else np.full_like(signed, np.nan)
            values, pairs = np.abs(signed), np.zeros(0, int)
            difference = stats.seed_interval(signed[:, None], reps, seed)
        else:
            if calibration.estimate not in results.logs or calibration.truth not in results.logs:
                continue
            per_probe = results.logs[[calibration.estimate, calibration.truth]].sel(
                task=task, ablation=ablation, k=k).sel(seed=list(healthy)).transpose("seed", "step", "probe").compute()
            distance, logp = per_probe[calibration.estimate].values, per_probe[calibration.truth].values
            values = rank_correlation(distance, logp, calibration.decreasing)
            pairs, difference = finite_pairs(distance, logp), None
        defined = values[np.isfinite(values)]
        agreement = (stats.seed_interval(defined[:, None], reps, seed) if defined.size else
                     stats.no_interval(np.full(1, np.nan), 0))
        calibrated.append(CalibrationSummary(calibration, estimate, truth, agreement, values, difference, pairs,
                                             healthy, diverged))
    return tuple(calibrated)


def diagnostic_values(logged: xr.Dataset, name: str) -> tuple[np.ndarray, np.ndarray]:
    """steps (T,) and values (seeds, T) of one quantity, logged or derived, at the steps (evaluation steps for an
    EVALUATION quantity) where every seed has it; empty when the run does not log it (FQL has no routing
    quantities)."""
    empty = np.zeros(0, int), np.zeros((logged.sizes["seed"], 0))
    steps = "eval_step" if QUANTITIES[name].kind == EVALUATION else "step"
    if QUANTITIES[name].derived:
        values = derive(name, {operand: logged[operand].values for operand in QUANTITIES[name].derived[1:]
                               if operand in logged})
    else:
        values = np.asarray(logged[name].transpose("seed", steps).values, np.float64) if name in logged else None
    if values is None:
        return empty
    keep = np.isfinite(values).all(axis=0) if values.shape[0] else np.zeros(values.shape[1], bool)
    return logged[steps].values[keep].astype(int), values[:, keep]


def diagnostic_summary(logged: xr.Dataset, name: str, reps: int, seed: int) -> DiagnosticSummary | None:
    steps, values = diagnostic_values(logged, name)
    if steps.size == 0:
        return None
    late_rows = max(1, len(steps) // 3)
    early = values[:, :1]
    late = values[:, -late_rows:].mean(axis=1, keepdims=True)
    return DiagnosticSummary(Curve(steps, stats.seed_interval(values, reps, seed)),
                             stats.seed_interval(early, reps, seed), stats.seed_interval(late, reps, seed),
                             tuple(int(s) for s in logged["seed"].values), early[:, 0], late[:, 0])


# ------------------------------------------------------------------------------------------------
# report.json


def _interval_json(interval: stats.Interval, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """{point, low, high: lists, runs}; given `names`, {name: {point, low, high: numbers, runs}} per entry."""
    lists = {key: [_finite(v) for v in getattr(interval, key)] for key in ("point", "low", "high")}
    if names is None:
        return {**lists, "runs": interval.runs}
    return {name: {**{key: values[i] for key, values in lists.items()}, "runs": interval.runs}
            for i, name in enumerate(names)}


def _value_json(interval: stats.Interval) -> dict[str, Any]:
    """A (1,) interval as {point, low, high, runs}."""
    return _interval_json(interval, ("value",))["value"]


def analysis_json(analysis: Analysis, results: Results) -> dict[str, Any]:
    """Every statistic as plain JSON, keyed by metric, ablation, K and task (None where no interval)."""
    aggregates: dict[str, Any] = {name: {} for name in stats.AGGREGATES}
    profiles: dict[str, Any] = {}
    efficiency: dict[str, Any] = {}
    for (ablation, k), group in analysis.groups.items():
        m = group.matrix
        described = {"tasks": list(m.tasks), "seeds": list(m.seeds), "runs": m.num_runs,
                     "excluded": [{"task": t, "seed": s} for t, s in m.excluded]}
        for name, value in _interval_json(group.aggregates, stats.AGGREGATES).items():
            aggregates[name].setdefault(ablation, {})[str(k)] = {**value, **described}
        profiles.setdefault(ablation, {})[str(k)] = {"tau": stats.PROFILE_TAUS.tolist(),
                                                     **_interval_json(group.profile), **described}
        if group.sample_efficiency is not None:
            efficiency.setdefault(ablation, {})[str(k)] = {"step": group.sample_efficiency.steps.tolist(),
                                                           **_interval_json(group.sample_efficiency.estimate),
                                                           **described}
    improvement: dict[str, Any] = {}
    difference: dict[str, Any] = {}
    for (x, kx, y, ky), interval in analysis.score_difference.items():
        improvement.setdefault(f"{x}>{y}", {})[str(kx)] = {**_value_json(analysis.improvement[(x, kx, y, ky)]),
                                                            "k_x": kx, "k_y": ky}
        difference.setdefault(f"{x}-{y}", {})[str(kx)] = {
            **_value_json(interval), "k_x": kx, "k_y": ky,
            "material": stats.is_material(interval, stats.SCORE_MATERIAL),
            "verdict": stats.verdict(interval, stats.SCORE_MATERIAL),
            "tasks": list(analysis.matched[(x, kx, y, ky)].tasks),
            "tasks_left_out": list(analysis.matched[(x, kx, y, ky)].left_out),
            "per_task": {task: {**_value_json(d), "verdict": stats.verdict(d, stats.SCORE_MATERIAL)}
                         for (task, *key), d in analysis.task_difference.items() if tuple(key) == (x, kx, y, ky)}}
    per_task: dict[str, Any] = {}
    for (task, ablation, k), scores in analysis.per_task.items():
        point, low, high = scores.mean.at(0)
        per_task.setdefault(task, {}).setdefault(ablation, {})[str(k)] = {
            "mean": _finite(point), "low": _finite(low), "high": _finite(high), "std": _finite(scores.std),
            "seeds": list(scores.seeds), "not_scored": list(scores.not_scored)}
    diagnostics: dict[str, Any] = {}
    for (name, task, ablation, k), summary in analysis.diagnostics.items():
        diagnostics.setdefault(name, {}).setdefault(task, {}).setdefault(ablation, {})[str(k)] = {
            "step": summary.curve.steps.tolist(), "curve": _interval_json(summary.curve.estimate),
            "early": _value_json(summary.early), "late": _value_json(summary.late), "seeds": list(summary.seeds)}
    calibration: dict[str, Any] = {}
    for (task, ablation, k), summaries in analysis.calibrations.items():
        calibration.setdefault(task, {}).setdefault(ablation, {})[str(k)] = {
            s.calibration.estimate: {
                "truth": s.calibration.truth, "measure": s.calibration.measure, "bar": s.calibration.bar,
                "estimate_late": _value_json(s.estimate.late), "truth_late": _value_json(s.truth.late),
                "agreement": _value_json(s.agreement),
                "agreement_per_seed": [_finite(v) for v in s.agreement_values],
                "difference": None if s.difference is None else _value_json(s.difference),
                "within_bar": s.calibration.within_bar(float(s.agreement.point[0])),
                "pairs_per_seed": [int(n) for n in s.pairs], "seeds": list(s.seeds),
                "diverged_left_out": list(s.left_out)}
            for s in summaries}
    return {
        "bootstrap": {"reps": analysis.reps, "seed": analysis.seed, "confidence": stats.CONFIDENCE,
                      "method": "95% percentile stratified bootstrap as rliable.library.get_interval_estimates "
                                "computes it: one call per quantity with a single-key score dict, "
                                "numpy.random.seed(seed) before each call (reports.stats)",
                      "functions": {"aggregates": "reports.stats.aggregate_scores on (runs, tasks)",
                                    "performance_profile": "reports.stats.score_distribution on (runs, tasks)",
                                    "probability_of_improvement": "reports.stats.probability_of_improvement on "
                                                                  "[(runs_x, tasks), (runs_y, tasks)]",
                                    "sample_efficiency": "reports.stats.iqm_per_step on (runs, tasks, steps)",
                                    "per_task": "reports.stats.seed_mean on (seeds, 1, 1)",
                                    "diagnostics": "reports.stats.seed_mean on (seeds, 1, steps)"},
                      "optimality_gap_threshold": stats.OPTIMALITY_THRESHOLD},
        "score": "mean of the last 3 evaluations of each seed on the run's final schedule "
                 "(docs/drol-spec.md section 3); NaN for a diverged seed, "
                 "which is left out of the statistics and listed",
        "tasks": results.tasks,
        "aggregates": aggregates,
        "probability_of_improvement": improvement,
        "iqm_difference": difference,
        "materiality": {"score (IQM difference)": stats.SCORE_MATERIAL,
                        **{name: r.material for name, r in REPORTING.items()},
                        "rule": "material: the whole 95% interval lies beyond the threshold; negligible: the whole "
                                "interval lies within it; inconclusive: otherwise; no verdict ('too few runs') "
                                f"below {stats.MIN_RUNS} seeds per side; null: never judged",
                        "min_runs": stats.MIN_RUNS},
        "reference_levels": analysis.references,
        "performance_profile": profiles,
        "sample_efficiency": efficiency,
        "per_task": per_task,
        "diagnostics": diagnostics,
        "calibration": {"measures": {"difference": "|late estimate - late truth| per seed (late: mean over the last "
                                                   "third of logged rows), mean over seeds; within the bar when at "
                                                   "most the bar",
                                     "rank correlation": "Spearman of support_dist against -behavior_logp over a "
                                                         "seed's logged (row, probe) pairs, mean over the seeds where "
                                                         "it is defined; within the bar when at least the bar"},
                        "runs": calibration},
    }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
