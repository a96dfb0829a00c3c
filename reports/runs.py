"""What a results folder holds, as tables: the run inventory and the score table (scores.csv).

Reads every run under a folder through `diagnostics.open_runs` (plus each run's config.json for
what it was asked to do) and turns evaluations into the published protocol's per-seed scores
(drol_diag.runfolder.scoring.run_scores: mean of the last three evaluations, NaN for a diverged seed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from drol.variants import VARIANTS
from drol_diag.runfolder import scoring, store
from drol_diag.settings.options import DEFAULT_PROBES, OPTIONS

SCORE_COLUMNS = ("task", "ablation", "k", "seed", "score", "diverged", "evaluations", "last_eval_step")


@dataclass(frozen=True)
class RunInfo:
    """One run folder (task, ablation, K; several seeds): what it was asked to do and how far it got."""

    task: str
    ablation: str
    k: int
    seeds: tuple[int, ...]
    steps_planned: int
    steps_done: int  # last logged update
    evaluations: int  # evaluation rows logged
    profile: str
    hidden: str  # actor widths, e.g. "128,128,128"
    git_commit: str
    command: str
    run_dir: str
    sweep_options: tuple[str, ...]  # `drol-diag sweep` options that give a new group these settings


    @property
    def finished(self) -> bool:
        return self.steps_done >= self.steps_planned


@dataclass(frozen=True)
class Results:
    """A results folder, read: the lazy logs (dims task, ablation, k, seed, ...), the runs and the scores."""

    root: Path
    logs: xr.Dataset  # open_runs(root, squeeze_k=False)
    runs: tuple[RunInfo, ...]
    scores: pd.DataFrame  # SCORE_COLUMNS, one row per (task, ablation, k, seed)

    @property
    def tasks(self) -> list[str]:
        return sorted({r.task for r in self.runs})

    @property
    def groups(self) -> list[tuple[str, int]]:
        """(ablation, K) pairs present, dynamic first, then in `drol-diag list ablations` order, K ascending."""
        return sorted({(r.ablation, r.k) for r in self.runs}, key=lambda g: (ablation_rank(g[0]), g[0], g[1]))

    @property
    def ablations(self) -> list[str]:
        return list(dict.fromkeys(a for a, _ in self.groups))

    def ks(self, ablation: str) -> list[int]:
        return [k for a, k in self.groups if a == ablation]

    def run(self, task: str, ablation: str, k: int) -> RunInfo | None:
        return next((r for r in self.runs if (r.task, r.ablation, r.k) == (task, ablation, k)), None)


def ablation_rank(name: str) -> int:
    """Position of an ablation in the variant list (refresh-50 as refresh-N; unknown names last)."""
    order = list(VARIANTS)
    family = "refresh-N" if re.fullmatch(r"refresh-\d+", name) else name
    return order.index(family) if family in order else len(order)


def read_results(root: Path) -> Results:
    """Open every run under `root`. Raises FileNotFoundError (no runs) or diagnostics.runs.RunsError."""
    from diagnostics import open_runs

    logs = open_runs(root, squeeze_k=False)
    runs = tuple(sorted((run_info(logs, str(path)) for path in np.unique(logs.run_dir.values) if path),
                        key=lambda r: (r.task, ablation_rank(r.ablation), r.ablation, r.k)))
    return Results(root=root, logs=logs, runs=runs, scores=score_table(logs, runs))


def run_info(logs: xr.Dataset, run_dir: str) -> RunInfo:
    """A run's RunInfo from its config.json and its logged rows."""
    config = store.read_json(Path(run_dir) / store.CONFIG_FILE)
    run, learner = config["run"], config["learner"]
    where = {dim: logs[dim].values[index[0]] for dim, index in
             zip(("task", "ablation", "k"), np.nonzero(logs.run_dir.values == run_dir))}
    one = logs.sel(where)
    steps_done = _last_finite_coordinate(one["diverged"], "step") if "diverged" in one else 0
    evaluations = int(np.isfinite(one["eval_score"].values).any(axis=0).sum()) if "eval_score" in one else 0
    return RunInfo(task=str(where["task"]), ablation=str(where["ablation"]), k=int(where["k"]),
                   seeds=tuple(int(s) for s in run["seeds"]), steps_planned=int(run["steps"]), steps_done=steps_done,
                   evaluations=evaluations, profile=str(run.get("profile", "")),
                   hidden=",".join(map(str, learner.get("actor_hidden", []))),
                   git_commit=str(config.get("git_commit", "")), command=str(config.get("command", "")),
                   run_dir=run_dir, sweep_options=sweep_options(config))


def sweep_options(config: dict) -> tuple[str, ...]:
    """The `drol-diag sweep` options that reproduce a run's settings (config.json) in a new group:
    schedule, widths, batch, learning rate and diagnostics. Family presets (bc_coef, discount, ...)
    follow from the task."""
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


def score_table(logs: xr.Dataset, runs: tuple[RunInfo, ...]) -> pd.DataFrame:
    """One row per (task, ablation, k, seed) of every run: the protocol score, whether the seed diverged,
    how many evaluations it has and the step of its last one. Sorted by task, ablation order, k, seed."""
    rows = []
    for run in runs:
        one = logs.sel(task=run.task, ablation=run.ablation, k=run.k).sel(seed=list(run.seeds))
        evals = one["eval_score"].values if "eval_score" in one else np.full((len(run.seeds), 0), np.nan)
        diverged = (np.nan_to_num(one["diverged"].values, nan=0.0) > 0).any(axis=1) if "diverged" in one \
            else np.zeros(len(run.seeds), bool)
        scores = scoring.run_scores(evals, diverged)
        eval_steps = one["eval_step"].values if "eval_step" in one.coords else np.zeros(0, int)
        for i, seed in enumerate(run.seeds):
            finite = np.isfinite(evals[i])
            rows.append(dict(task=run.task, ablation=run.ablation, k=run.k, seed=seed, score=scores[i],
                             diverged=bool(diverged[i]), evaluations=int(finite.sum()),
                             last_eval_step=int(eval_steps[finite].max()) if finite.any() else -1))
    table = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    order = table["ablation"].map(ablation_rank)
    return table.assign(_order=order).sort_values(["task", "_order", "ablation", "k", "seed"]) \
        .drop(columns="_order").reset_index(drop=True)


@dataclass(frozen=True)
class ScoreMatrix:
    """Final scores of one (ablation, K) over tasks, as rliable takes them: `scores` (runs, tasks).

    Rows are the seeds with a finite score on every task (`seeds`); `excluded` lists the
    (task, seed) pairs left out because the seed diverged or was never evaluated there.
    """

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
    """Evaluation scores of `matrix`'s runs against training step, for sample-efficiency curves.

    Returns steps (E,) and scores (runs, tasks, E) over the evaluation steps at which every one of
    those runs was evaluated (the steps shared by all its tasks)."""
    one = logs["eval_score"].sel(ablation=matrix.ablation, k=matrix.k, task=list(matrix.tasks),
                                 seed=list(matrix.seeds))
    values = np.asarray(one.transpose("seed", "task", "eval_step").values, np.float64)  # (runs, tasks, E)
    shared = np.isfinite(values).all(axis=(0, 1))
    return one["eval_step"].values[shared].astype(int), values[..., shared]
