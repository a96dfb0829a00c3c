"""Time estimates for `drol-diag sweep --dry-run`, from a short warm-up measured in this process.

One warm-up per distinct program cost (task, method, network widths, batch size, K, routing): compile a
chunk of WARMUP_UPDATES updates for all the sweep's seeds (vmapped, as the run will) and time one
call of it, on the number of cores each group will get. A group's estimate is then

    compile + steps x (seconds per update of all seeds) + GROUP_OVERHEAD_S

and the sweep's wall time is that of the groups handed, in order, to `jobs` workers.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from ablations.executors import claim_cores
from ablations.sweep import PlannedGroup, SweepPlan

WARMUP_UPDATES = 50  # updates timed per warm-up (after compiling them)
GROUP_OVERHEAD_S = 5.0  # per group beyond compile and updates: process start, task and probe set-up,
#                         evaluations (3-7 s for the tiny runs of the tests on the 2-core CI machine)


@dataclass(frozen=True)
class Estimate:
    """The estimated time of one group."""

    compile_s: float  # compiling the training chunk
    seed_updates_per_s: float  # updates per second times seeds (all seeds advance together)
    total_s: float  # compile + updates + GROUP_OVERHEAD_S


def cost_key(planned: PlannedGroup) -> tuple:
    """What a group's speed depends on: groups with equal keys share one warm-up."""
    learner = planned.learner
    routing = (getattr(learner, "routing", None), getattr(learner, "latents", None),
               min(getattr(learner, "refresh_interval", 1), 2))  # (static: no routing pass; refresh-N: a snapshot)
    return (planned.run.task, learner.method, tuple(learner.actor_hidden), tuple(learner.critic_hidden),
            learner.batch_size, learner.num_candidates, routing)


def time_warmup(planned: PlannedGroup, dataset_dir: str | None) -> tuple[float, float]:
    """(compile seconds, seconds per update of all seeds) of the group's program, measured here."""
    import jax
    import jax.numpy as jnp

    from drol.learner import make_init, make_train_chunk
    from drol.methods import make_learner
    from drol_diag.tasks import load_task
    from drol_diag.training.driver import device_dataset

    task = load_task(planned.run.task, dataset_dir)
    learner = make_learner(planned.learner, task.obs_dim, task.action_dim, len(task.dataset["actions"]))
    dataset = device_dataset(task.dataset)
    started = time.perf_counter()
    states = make_init(learner)(jnp.asarray(planned.run.seeds, jnp.int32))
    chunk = make_train_chunk(learner, WARMUP_UPDATES).lower(states, dataset).compile()
    compiled = time.perf_counter()
    jax.block_until_ready(chunk(states, dataset))
    return compiled - started, (time.perf_counter() - compiled) / WARMUP_UPDATES


def estimate_groups(plan: SweepPlan, threads: int) -> dict[str, Estimate]:
    """Estimates of the groups to run, by run folder (str), warmed up on `threads` cores.

    The calling thread is pinned to those cores for the warm-ups (and let go after); the
    measurement holds exactly when JAX starts its CPU thread pool here, as in the CLI."""
    measured: dict[tuple, tuple[float, float]] = {}
    estimates = {}
    previous = os.sched_getaffinity(0)
    with claim_cores(threads) as cores:
        os.sched_setaffinity(0, cores)
        try:
            for planned in plan.to_run:
                key = cost_key(planned)
                if key not in measured:
                    measured[key] = time_warmup(planned, plan.spec.dataset_dir)
                compile_s, per_update = measured[key]
                estimates[str(planned.run_dir)] = Estimate(
                    compile_s, len(planned.run.seeds) / per_update,
                    compile_s + planned.run.steps * per_update + GROUP_OVERHEAD_S)
        finally:
            os.sched_setaffinity(0, previous)
    return estimates


def wall_time(durations: list[float], jobs: int) -> float:
    """Wall seconds of running `durations` in order, each on the first of `jobs` workers to be free."""
    free_at = [0.0] * max(1, jobs)
    for duration in durations:
        free_at[free_at.index(min(free_at))] += duration
    return max(free_at)
