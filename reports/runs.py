"""What a results folder holds, as tables: the run inventory and the score table (scores.csv).

A sweep's grid dims are folded into the ablation dim (`fold_grid`): each grid point of an ablation is its own
ablation label, "dynamic bc_coef=0.3", and `Results.point` gives the label's ablation and settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from diagnostics.runs import RUN_DIMS, read_runs
from drol.variants import VARIANTS
from drol_diag.runfolder import scoring, store
from drol_diag.runfolder.folders import missing_setting, none_readable, one_line, plain, run_identity
from drol_diag.settings.options import DEFAULT_PROBES, OPTIONS

SCORE_COLUMNS = ("task", "ablation", "k", "seed", "score", "diverged", "evaluations", "last_eval_step",
                 "uncounted_evaluations")


@dataclass(frozen=True)
class RunInfo:
    """One run folder (task, ablation, K; several seeds): what it was asked to do and how far it got."""

    task: str
    ablation: str
    k: int
    seeds: tuple[int, ...]
    steps_planned: int
    steps_done: int  # last logged update
    eval_interval: int  # updates between evaluations (config.json: the run's final schedule)
    evaluations: int  # evaluation rows logged
    profile: str
    hidden: str  # actor widths, e.g. "128,128,128"
    transitions: int | None  # training transitions of the task's dataset (config.json; None where not recorded)
    action_dim: int | None  # the task's action dimensions (config.json; None where not recorded)
    reference_levels: dict[str, float]  # the task's reference policies' scores (config.json; {}: none recorded)
    behaviour_level: str | None  # which of them plays a supported action at random (the yardstick without bc-only)
    git_commit: str
    command: str
    run_dir: str
    sweep_options: tuple[str, ...]  # `drol-diag sweep` options that give a new group these settings

    @property
    def finished(self) -> bool:
        return self.steps_done >= self.steps_planned


@dataclass(frozen=True)
class SkippedRunInfo:
    """A run folder found but not read: where, why (one line), and the run it would have been ("", None: unknown)."""

    run_dir: str
    reason: str
    task: str
    ablation: str
    k: int | None


@dataclass(frozen=True)
class GridPoint:
    """An ablation label of a hyper-parameter grid: the ablation and its point ((setting, value), ...)."""

    ablation: str
    settings: tuple[tuple[str, Any], ...]

    @property
    def settings_text(self) -> str:
        """'bc_coef=0.3 lr=0.0001' ('' without swept settings)."""
        return " ".join(f"{name}={value}" for name, value in self.settings)

    @property
    def label(self) -> str:
        """The ablation label: 'dynamic bc_coef=0.3 lr=0.0001' ('dynamic' without swept settings)."""
        return " ".join([self.ablation, *(f"{name}={value}" for name, value in self.settings)])


def grid_point(grid: dict[str, GridPoint], label: str) -> GridPoint:
    """The ablation and grid point of an ablation label (a label outside `grid` is an ablation, at no point)."""
    return grid.get(label, GridPoint(label, ()))


@dataclass(frozen=True)
class Results:
    """A results folder, read: every run folder under `root` is in `runs` or `skipped`."""

    root: Path
    logs: xr.Dataset  # open_runs(root)
    runs: tuple[RunInfo, ...]
    scores: pd.DataFrame  # SCORE_COLUMNS, one row per (task, ablation, k, seed)
    skipped: tuple[SkippedRunInfo, ...] = ()  # by run folder
    grid: dict[str, GridPoint] = field(default_factory=dict)  # ablation label -> its ablation and grid point ({}: none)

    @property
    def found(self) -> int:
        """Run folders found under `root`: read or skipped."""
        return len(self.runs) + len(self.skipped)

    @property
    def tasks(self) -> list[str]:
        return sorted({r.task for r in self.runs})

    @property
    def groups(self) -> list[tuple[str, int]]:
        """(ablation, K) pairs present, dynamic first, then in `drol-diag list ablations` order, K ascending."""
        return sorted({(r.ablation, r.k) for r in self.runs},
                      key=lambda g: (ablation_rank(self.point(g[0]).ablation), g[0], g[1]))

    @property
    def ablations(self) -> list[str]:
        return list(dict.fromkeys(a for a, _ in self.groups))

    def ks(self, ablation: str) -> list[int]:
        return [k for a, k in self.groups if a == ablation]

    def point(self, label: str) -> GridPoint:
        return grid_point(self.grid, label)

    def run(self, task: str, ablation: str, k: int) -> RunInfo | None:
        return next((r for r in self.runs if (r.task, r.ablation, r.k) == (task, ablation, k)), None)


def fold_grid(logs: xr.Dataset) -> tuple[xr.Dataset, dict[str, GridPoint]]:
    """`logs` (open_runs) with its grid dims folded into `ablation`: one label per (ablation, grid point) that has a
    run (GridPoint.label); the logs unchanged and {} when there is no grid."""
    grid = [dim for dim in logs["run_dir"].dims if dim not in RUN_DIMS]
    if not grid:
        return logs, {}
    stacked = logs.stack(_point=("ablation", *grid))
    has_run = (stacked["run_dir"] != "").any([d for d in stacked["run_dir"].dims if d != "_point"]).values
    stacked = stacked.isel(_point=np.nonzero(has_run)[0])
    points: dict[str, GridPoint] = {}
    for values in stacked["_point"].values:
        ablation, *settings = values
        kept = tuple((name, plain(value)) for name, value in zip(grid, settings) if not missing_setting(value))
        point = GridPoint(str(ablation), kept)
        points[point.label] = point
    folded = stacked.drop_vars(["_point", "ablation", *grid]).assign_coords(ablation=("_point", list(points)))
    folded = folded.swap_dims({"_point": "ablation"}).transpose("task", "ablation", "k", ...)
    return folded, points


def ablation_rank(name: str) -> int:
    """Position of an ablation in the variant list (refresh-50 as refresh-N)."""
    order = list(VARIANTS)
    family = "refresh-N" if re.fullmatch(r"refresh-\d+", name) else name
    return order.index(family) if family in order else len(order)


def read_results(root: Path) -> Results:
    """Open every run under `root`, every value read once; an unreadable run folder is in `skipped`.
    FileNotFoundError (no runs) or RunsError (none readable, or two folders of one run)."""
    logs, unreadable = read_runs(root, read_values=True)
    logs, grid = fold_grid(logs)
    skipped = [skipped_run_info(run.run_dir, run.reason) for run in unreadable]
    read = []
    for path in (str(p) for p in np.unique(logs.run_dir.values) if p):
        try:
            read.append(run_info(logs, path))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:  # a damaged config.json
            reason = f"cannot read its {store.CONFIG_FILE}: {one_line(error)}"
            skipped.append(skipped_run_info(Path(path), reason, logs))
    if not read:
        raise none_readable(root, [f"{s.run_dir}: {s.reason}" for s in skipped])
    logs = _without_runs(logs, [s.run_dir for s in skipped])
    runs = tuple(sorted(read, key=lambda r: (r.task, ablation_rank(grid_point(grid, r.ablation).ablation), r.ablation,
                                             r.k)))
    logs = with_counted_evaluations(logs, runs)
    return Results(root=root, logs=logs, runs=runs, scores=score_table(logs, runs),
                   skipped=tuple(sorted(skipped, key=lambda s: s.run_dir)), grid=grid)


def skipped_run_info(run_dir: Path, reason: str, logs: xr.Dataset | None = None) -> SkippedRunInfo:
    """A skipped run folder's record: its (task, ablation, K) from its config.json, else from its place in `logs`."""
    task, ablation, k = run_identity(run_dir) or (logs is not None and _place(logs, str(run_dir))) or ("", "", None)
    return SkippedRunInfo(str(run_dir), reason, str(task), str(ablation), None if k is None else int(k))


def _place(logs: xr.Dataset, run_dir: str) -> tuple[Any, ...] | None:
    """The (task, ablation, k) coordinates at which `logs` holds the run `run_dir`; None where it holds none."""
    index = np.nonzero(logs.run_dir.values == run_dir)
    return tuple(logs[dim].values[i[0]] for dim, i in zip(RUN_DIMS, index)) if len(index[0]) else None


def _without_runs(logs: xr.Dataset, run_dirs: list[str]) -> xr.Dataset:
    """`logs` with the numbers of the runs in `run_dirs` NaN and their run_dir "" (as for a run never made)."""
    gone = logs.run_dir.isin(run_dirs)
    if not bool(gone.any()):
        return logs
    blanked = {name: variable.where(~gone) for name, variable in logs.data_vars.items()
               if variable.dtype.kind in "fc" and set(gone.dims) <= set(variable.dims)}
    return logs.assign({**blanked, "run_dir": logs.run_dir.where(~gone, "")})


def run_info(logs: xr.Dataset, run_dir: str) -> RunInfo:
    """A run's RunInfo from its config.json and its logged rows."""
    config = store.read_json(Path(run_dir) / store.CONFIG_FILE)
    run, learner = config["run"], config["learner"]
    where = dict(zip(RUN_DIMS, _place(logs, run_dir)))
    one = logs.sel(where)
    steps_done = _last_finite_coordinate(one["diverged"], "step") if "diverged" in one else 0
    evaluations = int(np.isfinite(one["eval_score"].values).any(axis=0).sum()) if "eval_score" in one else 0
    return RunInfo(task=str(where["task"]), ablation=str(where["ablation"]), k=int(where["k"]),
                   seeds=tuple(int(s) for s in run["seeds"]), steps_planned=int(run["steps"]), steps_done=steps_done,
                   eval_interval=int(run["eval_interval"]),
                   evaluations=evaluations, profile=str(run.get("profile", "")),
                   hidden=",".join(map(str, learner.get("actor_hidden", []))),
                   transitions=config.get("task", {}).get("transitions"),
                   action_dim=config.get("task", {}).get("action_dim"),
                   reference_levels=dict(config.get("task", {}).get("reference_levels", {})),
                   behaviour_level=config.get("task", {}).get("behaviour_level"),
                   git_commit=str(config.get("git_commit", "")), command=str(config.get("command", "")),
                   run_dir=run_dir, sweep_options=sweep_options(config))


def sweep_options(config: dict) -> tuple[str, ...]:
    """The `drol-diag sweep` options that reproduce a run's settings (config.json) in a new group (family presets,
    bc_coef, discount, ..., follow from the task)."""
    run, learner, diagnostics = config["run"], config["learner"], config.get("diagnostics", {})
    flag = lambda name: OPTIONS[name].cli_flag
    widths = lambda w: ",".join(map(str, w))
    options = [flag("profile"), str(run.get("profile", "auto")), flag("steps"), str(run["steps"])]
    if learner.get("actor_hidden") == learner.get("critic_hidden"):
        options += [flag("hidden"), widths(learner["actor_hidden"])]
    else:
        options += [flag("actor_hidden"), widths(learner["actor_hidden"]),
                    flag("critic_hidden"), widths(learner["critic_hidden"])]
    options += [flag("batch_size"), str(learner["batch_size"]), flag("lr"), f"{learner['lr']:g}"]
    for name in ("eval_interval", "eval_episodes", "log_interval", "checkpoint_interval"):
        options += [flag(name), str(run[name])]
    if diagnostics.get("enabled", True):
        options += [flag("probes"), str(diagnostics.get("probes", DEFAULT_PROBES))]
    else:
        options += ["--no-" + flag("diagnostics")[2:]]
    return tuple(options)


def _last_finite_coordinate(values: xr.DataArray, dim: str) -> int:
    """The largest `dim` coordinate at which any value is finite (0 if none)."""
    finite = np.isfinite(values.values)
    other = tuple(i for i, d in enumerate(values.dims) if d != dim)
    rows = finite.any(axis=other) if other else finite
    return int(values[dim].values[rows].max()) if rows.any() else 0


def with_counted_evaluations(logs: xr.Dataset, runs: tuple[RunInfo, ...]) -> xr.Dataset:
    """`logs` with `eval_counted` (..., seed, eval_step) bool for every run: as its log marks it, else (a log
    older than the marker) by scoring.counted_evaluations; False where a run has no such evaluation."""
    if "eval_score" not in logs:
        return logs
    template = logs["eval_score"].transpose(..., "seed", "eval_step")
    logged = logs["eval_counted"].astype(np.float64) if "eval_counted" in logs else xr.full_like(template, np.nan)
    counted = xr.zeros_like(template, dtype=bool).compute()
    for run in runs:
        where = dict(task=run.task, ablation=run.ablation, k=run.k)
        rule = scoring.counted_evaluations(logs["eval_step"].values, run.eval_interval, run.steps_planned)
        marked = np.asarray(logged.sel(where).transpose("seed", "eval_step").values)
        counted.loc[where] = np.where(np.isfinite(marked), marked > 0, rule[None, :])
    return logs.assign(eval_counted=counted)


def score_table(logs: xr.Dataset, runs: tuple[RunInfo, ...]) -> pd.DataFrame:
    """One row per (task, ablation, k, seed) of every run, in the order of `runs`, by seed (scores.csv's columns)."""
    rows = []
    for order, run in enumerate(runs):
        one = logs.sel(task=run.task, ablation=run.ablation, k=run.k).sel(seed=list(run.seeds))
        evals = one["eval_score"].values if "eval_score" in one else np.full((len(run.seeds), 0), np.nan)
        diverged = (np.nan_to_num(one["diverged"].values, nan=0.0) > 0).any(axis=1) if "diverged" in one \
            else np.zeros(len(run.seeds), bool)
        counted = scoring.logged_counted(one["eval_counted"].transpose("seed", "eval_step").values) \
            if "eval_counted" in one else np.zeros(evals.shape, bool)
        scores = scoring.run_scores(evals, counted, diverged)
        eval_steps = one["eval_step"].values if "eval_step" in one.coords else np.zeros(0, int)
        for i, seed in enumerate(run.seeds):
            finite = np.isfinite(evals[i])
            used = finite & counted[i]
            rows.append(dict(task=run.task, ablation=run.ablation, k=run.k, seed=seed, score=scores[i],
                             diverged=bool(diverged[i]), evaluations=int(used.sum()),
                             last_eval_step=int(eval_steps[used].max()) if used.any() else -1,
                             uncounted_evaluations=int((finite & ~counted[i]).sum()), _order=order))
    table = pd.DataFrame(rows, columns=[*SCORE_COLUMNS, "_order"])
    return table.sort_values(["_order", "seed"]).drop(columns="_order").reset_index(drop=True)


@dataclass(frozen=True)
class ScoreMatrix:
    """Final scores of one (ablation, K) over tasks, as rliable takes them: `scores` (runs, tasks), one row per seed
    with a finite score on every task; `excluded`: the (task, seed) pairs left out (diverged or never evaluated)."""

    ablation: str
    k: int
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    scores: np.ndarray
    excluded: tuple[tuple[str, int], ...]

    @property
    def num_runs(self) -> int:
        return self.scores.shape[0]


def score_matrix(table: pd.DataFrame, ablation: str, k: int, tasks: list[str]) -> ScoreMatrix:
    """The (runs, tasks) matrix of `ablation` at `k` over `tasks` (every task must have the group)."""
    group = table[(table.ablation == ablation) & (table.k == k) & table.task.isin(tasks)]
    wide = group.pivot(index="seed", columns="task", values="score").reindex(columns=tasks)
    complete = wide.notna().all(axis=1)
    excluded = tuple((task, int(seed)) for seed, row in wide[~complete].iterrows()
                     for task in tasks if not np.isfinite(row[task]))
    kept = wide[complete]
    return ScoreMatrix(ablation, k, tuple(tasks), tuple(int(s) for s in kept.index), kept.to_numpy(np.float64),
                       excluded)


def eval_curves(logs: xr.Dataset, matrix: ScoreMatrix) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation scores of `matrix`'s runs: steps (E,) and scores (runs, tasks, E) over the steps at which every
    one of them was evaluated on its final schedule (eval_counted)."""
    scores = logs["eval_score"].where(logs["eval_counted"]) if "eval_counted" in logs else logs["eval_score"]
    one = scores.sel(ablation=matrix.ablation, k=matrix.k, task=list(matrix.tasks), seed=list(matrix.seeds))
    values = np.asarray(one.transpose("seed", "task", "eval_step").values, np.float64)  # (runs, tasks, E)
    shared = np.isfinite(values).all(axis=(0, 1))
    return one["eval_step"].values[shared].astype(int), values[..., shared]
