"""A sweep from plan to summary: validate the whole grid before anything is written, record it, run the
unfinished groups through an executor, and collect each group's outcome and score."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ablations.executors import (
    ELSEWHERE,
    FAILED,
    SKIPPED,
    GroupJob,
    GroupOutcome,
    Runner,
    ray_connection,
    run_local,
    run_ray,
)
from ablations.gpus import GpuSlot
from ablations.grid import (
    FQL,
    SWEEP_FILE,
    Group,
    SweepSpec,
    expand,
    resolve_group,
    run_arguments,
    unused_options,
    write_sweep_file,
)
from ablations.slurm import SlurmSettings, run_slurm
from drol.config import LearnerConfig
from drol_diag.runfolder import folders, store
from drol_diag.runfolder.record import diagnostics_record, run_dir_for
from drol_diag.settings import RunConfig
from drol_diag.settings.options import DEFAULT_PROBES
from drol_diag.tasks import check_task
from training.driver import check_writable_folder
from training.memory import check_fits, device_memory_elsewhere, estimate_memory, known_task_shape
from training.tracking import check_wandb

LOGS_DIR = "logs"  # <out>/logs/<task>/<ablation>-k<K>.log: every attempt's output
NOT_SHARED = ("finished, but {path} is not visible here: --out must be on a filesystem every node sees "
              "at the same path")


@dataclass(frozen=True)
class PlannedGroup:
    """A group with its resolved configs, where it goes, and what its folder holds now."""

    group: Group
    learner: LearnerConfig
    run: RunConfig
    run_dir: Path  # <out>/<task>/<ablation>-k<K>
    log_path: Path  # <out>/logs/<task>/<ablation>-k<K>.log
    settings: dict[str, Any]  # folders.settings_record: what its config.json must hold to be skipped or resumed
    state: folders.FolderState  # at planning time; run_group looks again at launch

    @property
    def name(self) -> str:
        point = "".join(f" {name}={value}" for name, value in self.group.settings)  # (its grid point)
        return f"{self.run.task} {self.run.ablation} K={self.learner.num_candidates}{point}"


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: its groups (distinct run folders, grid order) and notes for the user."""

    spec: SweepSpec
    out: Path
    force: bool  # restart folders whose settings differ
    groups: tuple[PlannedGroup, ...]
    notes: tuple[str, ...]  # one line each, e.g. that fql runs once per task

    @property
    def to_run(self) -> list[PlannedGroup]:
        """The groups not finished at planning time."""
        return [p for p in self.groups if p.state.kind != folders.FINISHED]


@dataclass(frozen=True)
class GroupResult:
    """A group at the end of the sweep."""

    planned: PlannedGroup
    outcome: GroupOutcome
    summary: dict[str, Any] | None  # its summary.json (None: not there)


# ------------------------------------------------------------------------------------------
# Planning: everything is checked here, before the sweep writes anything.


def group_diagnostics(spec: SweepSpec) -> dict[str, Any]:
    """The diagnostics settings every group's config.json records (train.diagnostics_record)."""
    return diagnostics_record(True if spec.diagnostics is None else spec.diagnostics,
                              DEFAULT_PROBES if spec.probes is None else spec.probes)


def log_path_for(out: Path, run_dir: Path) -> Path:
    """<out>/logs/<task>/<ablation>-k<K>.log for the run folder <out>/<task>/<ablation>-k<K>."""
    return Path(out) / LOGS_DIR / run_dir.parent.name / f"{run_dir.name}.log"


def plan_group(spec: SweepSpec, group: Group, out: Path, force: bool) -> PlannedGroup:
    """Resolve a group and look at its folder. Raises ValueError for bad settings, or a conflicting folder."""
    learner, run = resolve_group(spec, group)
    run_dir = run_dir_for(out, run, learner)
    check_writable_folder(run_dir, out)
    settings = folders.settings_record(learner, run, group_diagnostics(spec))
    state = folders.folder_state(run_dir, settings, run.steps)
    if state.kind == folders.CONFLICT and not force:
        raise ValueError(f"{run_dir} holds a run with other settings: {state.detail}; use the same settings, "
                         "another --out, or --force to start it again")
    return PlannedGroup(group, learner, run, run_dir, log_path_for(out, run_dir), settings, state)


def plan_sweep(spec: SweepSpec, out: Path, force: bool = False,
               available: tuple[int, str] | str | None = None) -> SweepPlan:
    """Validate the whole grid and look at every run folder; writes nothing. Raises ValueError (one line) for bad
    settings, missing datasets, conflicting folders, or a group that cannot fit in the memory `available` to each
    (bytes, what they are; None: this machine's device; a string: why it is not known, left unchecked)."""
    out = Path(out).absolute()  # (Ray workers on other nodes, and in other folders, get the same paths)
    groups = expand(spec)
    unused = unused_options(spec, groups)
    if unused:
        raise ValueError(f"{', '.join(unused)} applies to no group of this grid "
                         "(--bc-coef: DROL variants, --alpha: fql, --routing-temperature: soft-routing)")
    if spec.wandb is not None:  # (every group's run would refuse it)
        check_wandb(spec.wandb)
    for task in spec.tasks:
        check_task(task, spec.dataset_dir)
    check_writable_folder(out / LOGS_DIR, out)
    planned: dict[Path, PlannedGroup] = {}
    available = available or device_memory_elsewhere()  # (not in this process: its runs need the accelerator's)
    for group in groups:
        plan = plan_group(spec, group, out, force)
        if not isinstance(available, str):
            check_group_memory(plan, spec, available)
        planned.setdefault(plan.run_dir, plan)  # (K left to the preset may name a folder an explicit K names)
    notes = [f"memory not checked by the plan: {available}; each run checks its own"] * isinstance(available, str)
    if FQL in spec.ablations and spec.k:
        notes.append("fql has no K: it runs once per task (folder fql-k1), whatever --k lists")
    return SweepPlan(spec, out, force, tuple(planned.values()), tuple(notes))


def check_group_memory(planned: PlannedGroup, spec: SweepSpec, available: tuple[int, str]) -> None:
    """Raise ValueError (one line) when a group cannot fit in the memory `available` (bytes, where), by the
    estimate for the task's shape where known without loading it, else a lower bound (its run checks exactly)."""
    diagnostics = group_diagnostics(spec)
    estimate = estimate_memory(planned.learner, *known_task_shape(planned.run.task), len(planned.run.seeds),
                               diagnostics["probes"] if diagnostics["enabled"] else 0, planned.run)
    seeds = len(planned.run.seeds)
    check_fits(estimate, available, f"group {planned.name} ({seeds} seed{'s' * (seeds != 1)}, batch "
                                    f"{planned.learner.batch_size})")


def action(state: folders.FolderState) -> str:
    """What the sweep will do with a folder in `state`, for the plan."""
    return {folders.NEW: "run", folders.FINISHED: f"skip (finished, {state.steps_done} steps)",
            folders.RESUMABLE: "resume from its checkpoint", folders.UNSTARTED: "start again (no checkpoint yet)",
            folders.CONFLICT: f"start again (--force): {state.detail}"}[state.kind]


# ------------------------------------------------------------------------------------------
# Running.


def start_sweep(plan: SweepPlan, command: str = "") -> None:
    """Record the grid as <out>/sweep.toml (atomically) and make the logs folder."""
    plan.out.mkdir(parents=True, exist_ok=True)
    write_sweep_file(plan.out / SWEEP_FILE, plan.spec, command)
    (plan.out / LOGS_DIR).mkdir(exist_ok=True)


def job_for(plan: SweepPlan, planned: PlannedGroup, threads: int) -> GroupJob:
    """The executor's job for a planned group, its run pinned to `threads` cores."""
    return GroupJob(name=planned.name, run_dir=str(planned.run_dir), log_path=str(planned.log_path),
                    arguments=tuple(run_arguments(plan.spec, planned.group, plan.out)),
                    expected=planned.settings, steps=planned.run.steps, threads=threads, force=plan.force)


Progress = Callable[[int, int, GroupJob, GroupOutcome], None]  # (groups ended, groups to run, job, outcome)


def run_sweep(plan: SweepPlan, runner: Runner, threads: int,
              on_progress: Progress = lambda *_: None) -> list[GroupResult]:
    """Run every group not finished at planning time, then once more those another process held and has let
    go. Returns every group's result in plan order."""
    jobs = [job_for(plan, planned, threads) for planned in start_order(plan)]
    counts = {"ended": 0, "total": len(jobs)}

    def on_done(job: GroupJob, outcome: GroupOutcome) -> None:
        counts["ended"] += 1
        on_progress(counts["ended"], counts["total"], job, outcome)

    outcomes = dict(zip((job.run_dir for job in jobs), runner(jobs, on_done)))
    released = [job for job in jobs if outcomes[job.run_dir].status == ELSEWHERE
                and folders.lock_holder(Path(job.run_dir)) is None]
    if released:
        counts["total"] += len(released)
        outcomes.update(zip((job.run_dir for job in released), runner(released, on_done)))
    return [group_result(planned, outcomes.get(str(planned.run_dir), GroupOutcome(SKIPPED))) for planned in plan.groups]


def start_order(plan: SweepPlan) -> list[PlannedGroup]:
    """The groups to run, the grid's first point of every (task, ablation, K) first: groups that differ only in a
    float hyper-parameter share their traced and compiled programs (drol_diag.programs), which two of them started
    together would each trace."""
    axes = dict(plan.spec.grid)
    return sorted(plan.to_run, key=lambda planned: [axes[name].index(value) for name, value in planned.group.settings])


@contextlib.contextmanager
def connected_runner(executor: str = "local", address: str | None = None, workers: int = 1,
                     slots: tuple[GpuSlot, ...] = (), gpus_per_group: float | None = None,
                     slurm: SlurmSettings | None = None) -> Iterator[Runner]:
    """The executor's runner: run_local, run_ray (connected for the block) or run_slurm with their settings.
    ValueError (one line) when Ray is missing or unreachable."""
    if executor == "local":
        yield functools.partial(run_local, workers=workers, slots=slots)
        return
    if executor == "slurm":
        if slurm is None:
            raise ValueError("--executor slurm needs its settings (ablations.slurm.slurm_settings)")
        yield functools.partial(run_slurm, slurm)
        return
    with ray_connection(address) as ray:
        yield functools.partial(run_ray, ray, gpus_per_group=gpus_per_group or 0.0)


def execute(plan: SweepPlan, executor: str = "local", address: str | None = None, workers: int = 1,
            threads: int = 1, on_progress: Progress = lambda *_: None, note: str = "",
            slots: tuple[GpuSlot, ...] = (), gpus_per_group: float | None = None,
            slurm: SlurmSettings | None = None) -> list[GroupResult]:
    """Run a planned sweep: connected_runner, start_sweep (`note` as a comment), then run_sweep."""
    with connected_runner(executor, address, workers, slots, gpus_per_group, slurm) as runner:
        start_sweep(plan, note)
        return run_sweep(plan, runner, threads, on_progress)


def group_result(planned: PlannedGroup, outcome: GroupOutcome) -> GroupResult:
    """The group's result with its summary.json; a finished outcome without one here is FAILED."""
    path = planned.run_dir / store.SUMMARY_FILE
    summary = folders.read_record(path)
    if summary is None and outcome.status not in (FAILED, ELSEWHERE):
        outcome = replace(outcome, status=FAILED, error=NOT_SHARED.format(path=path))
    return GroupResult(planned, outcome, summary)
