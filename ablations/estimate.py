"""Time estimates for `drol-diag sweep --dry-run`, from a short warm-up measured in this process.

One warm-up per distinct program cost (`cost_key`), on the cores each group will get, measures what a
group's run spends its time on (`Costs`); a group's estimate is then

    start + set-up + compile + steps x update
          + (log rows - 1) x row + (evaluations - 1) x evaluation + (chunk ends - 1) x (flush + checkpoint)

as the run's schedule (driver.chunk_boundaries) makes them, and the sweep's wall time is that of the
groups handed, in order, to `jobs` workers. benchmarks/ablations.py checks it against a sweep it plans.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ablations.executors import claim_cores
from ablations.sweep import PlannedGroup, SweepPlan, group_diagnostics

WARMUP_UPDATES = 50  # updates timed per warm-up (after compiling them)
# What a group's process does before it trains, timed in a subprocess: its imports and loading the task.
START_CODE = ("import sys; from drol_diag.platform import start_process; start_process(); "
              "import training.driver; from drol_diag.tasks import load_task; "
              "load_task(sys.argv[1], sys.argv[2] or None)")


@dataclass(frozen=True)
class Costs:
    """What a group's run spends its time on, measured in a warm-up (seconds; see the module docstring)."""

    start_s: float  # a fresh process: imports and loading the task
    setup_s: float  # initial states, owner table, probes, the first diagnostics row, evaluation and log write
    compile_s: float  # compiling one training chunk
    update_s: float  # one update of all seeds
    row_s: float  # one diagnostics row (0 without diagnostics)
    eval_s: float  # one evaluation of all seeds (0 for a task without an evaluator)
    write_s: float  # one log flush and checkpoint


@dataclass(frozen=True)
class Estimate:
    """The estimated time of one group."""

    compile_s: float  # process start, set-up and compilation: what the group spends before its updates
    seed_updates_per_s: float  # updates per second times seeds (all seeds advance together)
    total_s: float  # everything (see the module docstring)


def cost_key(planned: PlannedGroup) -> tuple:
    """What a group's speed depends on: groups with equal keys share one warm-up."""
    learner = planned.learner
    routing = (getattr(learner, "routing", None), getattr(learner, "latents", None),
               min(getattr(learner, "refresh_interval", 1), 2))  # (static: no routing pass; refresh-N: a snapshot)
    return (planned.run.task, learner.method, tuple(learner.actor_hidden), tuple(learner.critic_hidden),
            learner.batch_size, learner.num_candidates, routing)


def timed(function, *args) -> tuple[Any, float]:
    """(function(*args), seconds it took, its JAX arrays ready)."""
    import jax

    started = time.perf_counter()
    result = jax.block_until_ready(function(*args))
    return result, time.perf_counter() - started


def time_start(task: str, dataset_dir: str | None) -> float:
    """Seconds a fresh process takes to import what a run imports and load `task` (START_CODE)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", START_CODE, task, dataset_dir or ""], check=True, capture_output=True)
    return time.perf_counter() - started


def time_warmup(planned: PlannedGroup, dataset_dir: str | None, diagnostics: dict[str, Any]) -> Costs:
    """The group's Costs but start_s (0 here), measured in this process with the training driver's own parts."""
    import jax.numpy as jnp
    import numpy as np

    from diagnostics.hooks import ProbeRecorder
    from diagnostics.quantities import row_dims
    from drol.learner import make_act, make_init, make_train_chunk
    from drol.methods import make_learner
    from drol_diag.runfolder import store
    from drol_diag.tasks import load_task
    from training.driver import device_dataset, static_owner_table
    from training.evaluation import evaluate_seeds

    task, run = load_task(planned.run.task, dataset_dir), planned.run
    learner = make_learner(planned.learner, task.obs_dim, task.action_dim, len(task.dataset["actions"]))
    dataset, seeds = device_dataset(task.dataset), list(run.seeds)
    act_fn = make_act(learner)

    def set_up():
        states = make_init(learner)(jnp.asarray(seeds, jnp.int32))
        if getattr(planned.learner, "refresh_interval", 1) == 0:
            states = static_owner_table(learner, states, dataset, progress=False)
        probes = diagnostics["probes"] if diagnostics["enabled"] else 0
        return states, ProbeRecorder(learner, task, dataset, seeds, probes) if probes else None

    def row_and_evaluation(states, recorder, step):
        row = recorder.row(states, step) if recorder is not None else {}
        evaluated = task.evaluate and evaluate_seeds(task, learner, states, seeds, step, run.eval_episodes, act_fn)
        return row, evaluated or {}

    (states, recorder), setup_s = timed(set_up)
    (row, evaluated), first_s = timed(row_and_evaluation, states, recorder, 0)  # (compiling their programs)
    updates = np.int32(WARMUP_UPDATES)
    chunk, compile_s = timed(lambda: make_train_chunk(learner).lower(states, dataset, updates).compile())
    (states, metrics), update_s = timed(chunk, states, dataset, updates)
    _, row_s = timed(lambda: recorder.row(states, 1) if recorder is not None else None)
    _, eval_s = timed(row_and_evaluation, states, None, 1)
    with tempfile.TemporaryDirectory() as folder:
        log = store.RunLog(Path(folder), seeds, {}, recorder.static_variables() if recorder else None, row_dims())

        def write(step):
            log.append("step", step, {**{name: np.asarray(value) for name, value in metrics.items()}, **row,
                                      "diverged": np.asarray(states.diverged)})
            if evaluated:
                log.append("eval_step", step, evaluated)
            log.flush()
            store.save_checkpoint(Path(folder), states, {"step": step})
        _, first_write_s = timed(write, 1)  # (the first flush writes the store whole)
        _, write_s = timed(write, 2)
    return Costs(0.0, setup_s + first_s + first_write_s, compile_s, update_s / WARMUP_UPDATES, row_s, eval_s,
                 write_s)


def group_estimate(costs: Costs, planned: PlannedGroup) -> Estimate:
    """A group's Estimate from the Costs of its warm-up, along its run's schedule."""
    from training.driver import chunk_boundaries

    run = planned.run
    ends = chunk_boundaries(0, run)
    rows, evaluations = ({*range(interval, run.steps + 1, interval), run.steps} for interval in
                         (run.log_interval, run.eval_interval))
    before = costs.start_s + costs.setup_s + costs.compile_s  # (set-up: the first row, evaluation...; one program)
    total = (before + run.steps * costs.update_s + (len(rows) - 1) * costs.row_s
             + (len(evaluations) - 1) * costs.eval_s + (len(ends) - 1) * costs.write_s)
    return Estimate(before, len(run.seeds) / costs.update_s, total)


def estimate_groups(plan: SweepPlan, threads: int) -> dict[str, Estimate]:
    """Estimates of the groups to run, by run folder (str), warmed up with this thread pinned to `threads` cores
    (exact when JAX starts its CPU pool here, as in the CLI) and JAX's compilation cache off, so that the
    warm-ups compile as the groups will."""
    import jax

    measured: dict[tuple, Costs] = {}
    starts: dict[str, float] = {}
    estimates = {}
    previous, caching = os.sched_getaffinity(0), jax.config.jax_enable_compilation_cache
    with claim_cores(threads) as cores:
        os.sched_setaffinity(0, cores)
        jax.config.update("jax_enable_compilation_cache", False)
        try:
            for planned in plan.to_run:
                key, task = cost_key(planned), planned.run.task
                if key not in measured:
                    measured[key] = time_warmup(planned, plan.spec.dataset_dir, group_diagnostics(plan.spec))
                if task not in starts:  # (after the warm-up: a task that cannot be loaded failed there, in one line)
                    starts[task] = time_start(task, plan.spec.dataset_dir)
                estimates[str(planned.run_dir)] = group_estimate(replace(measured[key], start_s=starts[task]), planned)
        finally:
            os.sched_setaffinity(0, previous)
            jax.config.update("jax_enable_compilation_cache", caching)
    return estimates


def wall_time(durations: list[float], jobs: int) -> float:
    """Wall seconds of running `durations` in order, each on the first of `jobs` workers to be free."""
    free_at = [0.0] * max(1, jobs)
    for duration in durations:
        free_at[free_at.index(min(free_at))] += duration
    return max(free_at)
