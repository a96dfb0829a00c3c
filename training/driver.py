"""Run a DROL training job: several seeds in one compiled program, logged to a run folder.

Data flows one way: task dataset -> learner state (drol.learner, pure JAX) -> chunks of updates -> the
observers (training.observer). The host sees the state only at chunk ends: every log, evaluation and
checkpoint step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm import tqdm

from diagnostics.density import BehaviourDensity, DensityError, DensitySettings, cached_density
from diagnostics.hooks import ProbeRecorder
from drol.config import ACTION_CLIP_EPS, LearnerConfig
from drol.learner import Learner, static_owners, train_chunk
from drol.methods import make_learner
from drol_diag import platform
from drol_diag.programs import KeptProgram
from drol_diag.runfolder import scoring, store
from drol_diag.runfolder.record import comparable, config_record, diagnostics_record, run_dir_for, setting_differences
from drol_diag.settings import RunConfig
from drol_diag.tasks import Task
from training.checkpoints import Checkpoints, restore
from training.evaluation import Evaluations
from training.memory import OWNER_CHUNK_CANDIDATES, check_fits, device_memory, estimate_memory
from training.observer import PHASES, Chunk, Observer, Phases
from training.progress import ProgressBar
from training.run_log import LogRows
from training.tracking import start_tracking


class RunError(ValueError):
    """A problem with the user's request (bad option, conflicting run folder): exit status 2."""


@dataclass(frozen=True)
class RunSummary:
    """What a finished (or stopped) run reports. Scores are NaN for seeds without evaluations."""

    run_dir: str
    seeds: list[int]
    scores: list[float]  # per seed: mean of the last three evaluation scores (fewer if the run made fewer)
    diverged_steps: list[int]  # per seed: update at which losses became NaN/inf, -1 if never
    steps: int  # updates done per seed
    wall_time_s: float  # whole command, compilation and evaluation included
    compile_time_s: float
    train_time_s: float  # time inside the compiled training chunks only
    updates_per_s: float  # updates per second of the program (all seeds advance together)
    seed_updates_per_s: float  # updates_per_s times the number of seeds
    score_evaluations: list[int] = dataclasses.field(default_factory=list)  # per seed: evaluations scored (0: none)
    process_wall_s: float = float("nan")  # the process's wall time when the summary was written (Phases.record)
    phases: dict[str, float] = dataclasses.field(default_factory=dict)  # {phase: seconds} (training.observer.PHASES)

    @property
    def mean_score(self) -> float:
        finite = [s for s in self.scores if np.isfinite(s)]
        return float(np.mean(finite)) if finite else float("nan")


def device_dataset(dataset: dict[str, np.ndarray]) -> dict[str, jnp.ndarray]:
    """The training arrays on the device, actions clipped to [-1 + eps, 1 - eps] (docs/drol-spec.md section 1)."""
    names = ("observations", "rewards", "masks", "next_observations")
    arrays = {k: jnp.asarray(dataset[k], jnp.float32) for k in names}
    actions = jnp.asarray(dataset["actions"], jnp.float32)
    arrays["actions"] = jnp.clip(actions, -1 + ACTION_CLIP_EPS, 1 - ACTION_CLIP_EPS)
    return arrays


def chunk_boundaries(start: int, run: RunConfig) -> list[int]:
    """Steps after `start` at which a chunk ends: every log, eval and checkpoint step, and the last."""
    ends = {run.steps}
    for interval in (run.log_interval, run.eval_interval, run.checkpoint_interval):
        ends.update(range(interval, run.steps + 1, interval))
    return sorted(e for e in ends if e > start)


def final_scores(logged: xr.Dataset, diverged: np.ndarray) -> tuple[list[float], list[int]]:
    """Per seed, the protocol score (scoring.run_scores) of the counted evaluations, and how many it averages."""
    if "eval_score" not in logged:
        return [float("nan")] * len(diverged), [0] * len(diverged)
    values, counted = logged["eval_score"].values, scoring.logged_counted(logged["eval_counted"].values)
    return ([float(s) for s in scoring.run_scores(values, counted, diverged)],
            [int(n) for n in scoring.scored_evaluations(values, counted, diverged)])


def check_writable_folder(folder: Path, out: Path) -> None:
    """Raise RunError (one line naming --out) unless `folder` (`out` or under it) is, or can be made, a folder
    this process may write in (its nearest existing ancestor: store.cannot_write_in)."""
    existing = Path(folder)
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "a file" if existing.is_file() else "not a folder"
        raise RunError(f"--out {out}: {existing} is {what}; give a folder (it is made if missing)")
    reason = store.cannot_write_in(existing)
    if reason:
        raise RunError(f"--out {out}: cannot make a folder in {existing} ({reason}); give a folder you can write in")


def check_run(task: Task, learner_config: LearnerConfig, run: RunConfig, out: Path, run_dir: Path) -> None:
    """What train() checks before it writes anything: --out can hold the run folder and the run fits in the
    device's memory. Raises RunError (one line); a batch larger than the training set is said on stderr."""
    check_writable_folder(run_dir, out)
    transitions, seeds = len(task.dataset["actions"]), len(run.seeds)
    estimate = estimate_memory(learner_config, task.obs_dim, task.action_dim, transitions, seeds,
                               run.probes if run.diagnostics else 0, run)
    try:
        check_fits(estimate, device_memory(), f"this run ({seeds} seed{'s' * (seeds != 1)}, K "
                                              f"{learner_config.num_candidates}, batch {learner_config.batch_size}, "
                                              f"{transitions} transitions)")
    except ValueError as error:
        raise RunError(str(error)) from None
    if learner_config.batch_size > transitions:
        print(f"note: --batch-size {learner_config.batch_size} is larger than the training set ({transitions} "
              "transitions); batches are drawn with replacement, so each batch repeats transitions", file=sys.stderr)


# A run this long has its training chunks compiled optimised where its process asked for -O0 (the test suite:
# platform.optimised_compile): at -O0 a chunk trains 4x slower, which costs more than the compile from about here.
OPTIMISE_FROM_UPDATES = 2000


def prepare_run_dir(run_dir: Path, record: dict[str, Any], resume: bool, force: bool) -> None:
    """Create the run folder, or check that an existing one may be resumed. Raises RunError."""
    config_path = run_dir / store.CONFIG_FILE
    if config_path.exists() and not force:
        if not resume:
            raise RunError(f"run folder {run_dir} already exists; pass --resume to continue it, --force to "
                           "start it again, or --out for another folder")
        previous = store.read_json(config_path)
        if comparable(previous) != comparable(record):
            changed = [k for k in comparable(record) if comparable(previous).get(k) != comparable(record)[k]]
            raise RunError(f"cannot resume {run_dir}: its {', '.join(changed)} differ from this command's: "
                           f"{'; '.join(setting_differences(comparable(previous), comparable(record)))} "
                           f"(see {config_path}); use the same settings, or --force to start it again")
    elif config_path.exists() and force:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    store.write_json_atomic(config_path, record)


@functools.lru_cache(maxsize=16)
def owner_table_program(learner: Learner, n: int, rows: int) -> KeptProgram:
    """The owners of `rows` training rows from `start` under every seed's initial parameters, kept across processes:
    (actor_params, bank_keys, observations (N, obs), actions (N, d), start) -> (S, rows)."""
    def chunk_of(settings):
        learner, n, rows = settings

        def chunk(actor_params, bank_keys, all_observations, all_actions, start):
            indices = jnp.minimum(start + jnp.arange(rows), n - 1)  # the last chunk repeats row n-1, then is cut
            observations, actions = all_observations[indices], all_actions[indices]
            return jax.vmap(lambda params, key: static_owners(learner, params, key, indices, observations, actions))(
                actor_params, bank_keys)
        return chunk
    return KeptProgram("owner_table", (learner, n, rows), chunk_of)


def static_owner_table(learner: Learner, states, dataset: dict[str, jnp.ndarray], progress: bool):
    """Static routing: every transition's owner under the initial parameters, in the states as owners (S, N)."""
    n, k = dataset["actions"].shape[0], learner.config.num_candidates
    rows = max(1, min(n, OWNER_CHUNK_CANDIDATES // k))
    chunk = owner_table_program(learner, n, rows)
    owners = []
    with tqdm(total=n, unit="transition", disable=not progress, dynamic_ncols=True, file=sys.stderr,
              desc=f"static routing: owners under the initial parameters (K={k})") as bar:
        for start in range(0, n, rows):  # (the dataset is an argument, not a closed-over constant of the program)
            table = chunk(states.actor_params, states.bank_key, dataset["observations"], dataset["actions"], start)
            owners.append(np.asarray(table)[:, :n - start])
            bar.update(owners[-1].shape[1])
    return states._replace(owners=jnp.asarray(np.concatenate(owners, axis=1)))


@functools.lru_cache(maxsize=64)
def init_program(learner: Learner) -> KeptProgram:
    """The seeds' initial states (drol.learner.make_init's program), kept across processes (drol_diag.programs)."""
    return KeptProgram("init", learner, lambda learner: jax.vmap(learner.init_state))


@functools.lru_cache(maxsize=64)
def chunk_program(learner: Learner) -> KeptProgram:
    """drol.learner.make_train_chunk's program (the states donated), kept across processes."""
    return KeptProgram("train_chunk", learner, lambda learner: functools.partial(train_chunk, learner),
                       donate_argnums=(0,))


def matmul_precision(run: RunConfig) -> Any:
    """The context every program of `run` is traced in, at its --matmul-precision (part of jit's cache key)."""
    return jax.default_matmul_precision(run.matmul_precision)


def fitted_density(task: Task, progress: bool) -> tuple[BehaviourDensity, bool]:
    """The task's learned behaviour density and whether it was fitted now (with a bar on stderr) rather than read
    from the cache. DensityError (one line) for a fit or cache that cannot be used."""
    with tqdm(total=DensitySettings().steps, desc=f"behaviour density of {task.name}", unit="upd",
              disable=not progress, dynamic_ncols=True, file=sys.stderr, leave=False, delay=0.5) as bar:
        return cached_density(task.dataset, task.validation, progress=lambda done, total: bar.update(done - bar.n))


def run_density(task: Task, run: RunConfig, progress: bool) -> tuple[BehaviourDensity | None, dict[str, Any]]:
    """The run's learned behaviour density (None where it has none) and config.json's record of it: the fit's
    cache key and held-out log-likelihood, or why there is none. RunError for a fit or cache that cannot be used."""
    if not run.diagnostics or run.density == "off":
        return None, {"off": "--density off" if run.diagnostics else "--no-diagnostics"}
    rows, needed = len(task.dataset["actions"]), DensitySettings().min_rows
    if rows < needed:  # --density auto: a dataset too small to fit runs without (`density fit` says so as an error)
        return None, {"off": f"the dataset has {rows:,} transitions; the fit needs at least {needed:,}"}
    try:
        density, fitted = fitted_density(task, progress)
    except DensityError as error:
        raise RunError(str(error)) from None
    if fitted:
        print(f"behaviour density of {task.name}: {density.summary()}", file=sys.stderr)
    return density, {"key": density.key, "heldout_logp_per_dim": density.heldout_logp_per_dim,
                     "heldout_rows": density.heldout_rows, "settings": dataclasses.asdict(density.settings)}


def train(task: Task, learner_config: LearnerConfig, run: RunConfig, out: Path, *, resume: bool = False,
          force: bool = False, progress: bool = True, phases: Phases | None = None) -> RunSummary:
    """Train every seed of `run` on `task`, logging to the run folder; returns the summary. Raises RunError for a
    conflicting run folder. `phases`: the process's time breakdown so far (the command line's, from the process's
    start: start-up and the task's loading); by default one from this call."""
    started, phases = time.perf_counter(), phases or Phases()
    run_dir = run_dir_for(out, run, learner_config)
    with phases("setup"):
        check_run(task, learner_config, run, out, run_dir)
    with phases("density"):
        density = run_density(task, run, progress)  # before the run folder: a fit that fails leaves nothing written
    with store.run_lock(run_dir), matmul_precision(run):
        return _train_locked(task, learner_config, run, run_dir, started, resume, force, progress, density, phases)


def _train_locked(task: Task, learner_config: LearnerConfig, run: RunConfig, run_dir: Path, started: float,
                  resume: bool, force: bool, progress: bool,
                  density: tuple[BehaviourDensity | None, dict[str, Any]], phases: Phases) -> RunSummary:
    """train() while holding the run folder's lock."""
    with phases("setup"):
        summary = _setup_and_train(task, learner_config, run, run_dir, resume, force, progress, density, phases)
    if isinstance(summary, RunSummary):  # (a finished run, reported again)
        return summary
    states, rows, step, start, compile_time, train_time = summary
    seeds = list(run.seeds)
    wall, rate = time.perf_counter() - started, (step - start) / train_time if train_time > 0 else float("nan")
    scores, score_evaluations = final_scores(rows.log.dataset(), np.asarray(states.diverged))
    process_wall, spent = phases.record()
    summary = RunSummary(run_dir=str(run_dir), seeds=seeds, scores=scores,
                         diverged_steps=[int(s) for s in np.asarray(states.diverged_step)], steps=step,
                         wall_time_s=wall, compile_time_s=compile_time,
                         train_time_s=train_time, updates_per_s=rate, seed_updates_per_s=rate * len(seeds),
                         score_evaluations=score_evaluations, process_wall_s=process_wall, phases=spent)
    store.write_json_atomic(run_dir / store.SUMMARY_FILE,
                            {**dataclasses.asdict(summary), "mean_score": summary.mean_score})
    return summary


def _setup_and_train(task: Task, learner_config: LearnerConfig, run: RunConfig, run_dir: Path, resume: bool,
                     force: bool, progress: bool, density: tuple[BehaviourDensity | None, dict[str, Any]],
                     phases: Phases):
    """_train_locked's set-up (timed as `setup` by the caller; the phases nested in it apart) and training: the
    final states, the log's observer, the step reached, the start step and the seconds compiling and training; or
    the RunSummary of a run already finished."""
    seeds, transitions = list(run.seeds), len(task.dataset["actions"])
    learner = make_learner(learner_config, task.obs_dim, task.action_dim, transitions)
    record = config_record(learner_config, run, task, {
        "diagnostics": diagnostics_record(run.diagnostics, run.probes, transitions), "density": density[1],
        **({"wandb": run.wandb} if run.wandb else {})})
    with phases("writing"):
        prepare_run_dir(run_dir, record, resume, force)
    if run.diagnostics and run.density == "auto" and density[0] is None:  # (after the checks: errors stay one line)
        print(f"note: no behaviour density: {density[1]['off']}", file=sys.stderr)
        store.remove_stale_versions(run_dir)

    with phases("task"):
        dataset = device_dataset(task.dataset)
    states = init_program(learner)(jnp.asarray(seeds, jnp.int32))
    restored = restore(run_dir, states) if resume else None
    states, start, since_log = restored or (states, 0, [])
    if start > run.steps:
        raise RunError(f"{run_dir} is already at step {start}, beyond --steps {run.steps}")
    if restored is not None and start == run.steps and (run_dir / store.SUMMARY_FILE).exists():
        finished = store.read_json(run_dir / store.SUMMARY_FILE)  # nothing to do: report it, rewrite nothing
        return RunSummary(**{f.name: finished[f.name] for f in dataclasses.fields(RunSummary) if f.name in finished})
    if restored is None and getattr(learner_config, "refresh_interval", 1) == 0:
        states = static_owner_table(learner, states, dataset, progress)

    with phases("diagnostics"):
        recorder = ProbeRecorder(learner, task, dataset, seeds, run.probes, density[0]) if run.diagnostics else None
    writer = store.Writer()
    rows = LogRows(run_dir, run, learner_config.num_candidates, record, recorder, since_log, start, resume, writer)
    evaluations = [Evaluations(task, learner, run, rows.log)] if task.evaluate is not None else []
    tracking = [start_tracking(run, learner_config, run_dir, record, rows.log)] if run.wandb else []
    # In this order: an evaluation's row joins the log before the log's flush; W&B gets rows the log holds.
    observers: list[Observer] = [ProgressBar(run, learner_config.num_candidates, start, progress), *evaluations, rows,
                                 *tracking, Checkpoints(run_dir, run, rows)]
    failed = True
    try:
        states, step, compile_time, train_time = run_chunks(learner, states, dataset, run, start, observers, phases)
        failed = False
    finally:
        try:
            for observer in observers:
                with phases(observer.phase):
                    observer.close(failed)
        finally:
            with phases("writing"):  # every row and checkpoint on disk before summary.json or the error goes on
                if failed:
                    with contextlib.suppress(Exception):  # (the error that stopped the run is the one to say)
                        writer.close()
                else:
                    writer.close()
    return states, rows, step, start, compile_time, train_time


def run_chunks(learner: Learner, states: Any, dataset: dict[str, jnp.ndarray], run: RunConfig, start: int,
               observers: list[Observer], phases: Phases | None = None) -> tuple[Any, int, float, float]:
    """Train from update `start` in chunks ending at chunk_boundaries (one compiled program for all),
    handing each chunk's end to the observers in order, until the last step or every seed diverged. Returns the
    states, the updates done per seed and the seconds spent compiling and training; `phases` gets the compile,
    the training and each observer's time (in its `phase`)."""
    ends, phases = chunk_boundaries(start, run), phases or Phases()
    began = time.perf_counter()
    with phases("compile_training"):
        options = platform.optimised_compile() if run.steps >= OPTIMISE_FROM_UPDATES else {}
        program = chunk_program(learner).compile(states, dataset, np.int32(0), options=options)
    compile_time, train_time, step = time.perf_counter() - began, 0.0, start
    for end in ends:
        began = time.perf_counter()
        with phases("training"):
            states, metrics = program(states, dataset, np.int32(end - step))
            metrics = jax.tree.map(np.asarray, metrics)  # (waits for the chunk)
        train_time += time.perf_counter() - began
        diverged = np.asarray(states.diverged)
        chunk = Chunk(end, end - step, states, metrics, diverged, end == run.steps or bool(diverged.all()),
                      (end - start) / train_time, phases=phases)
        step = end
        for observer in observers:
            with phases(observer.phase):
                observer.on_chunk(chunk)
        if chunk.last:  # (every seed diverged: nothing left to train)
            break
    return states, step, compile_time, train_time


def format_summary(summary: RunSummary, reference_levels: Mapping[str, float] | None = None) -> str:
    """A short human-readable summary of a run, with the task's reference levels beside the scores where given."""
    lines = [f"run folder: {summary.run_dir}"]
    for seed, score, div in zip(summary.seeds, summary.scores, summary.diverged_steps):
        lines.append(f"  seed {seed}: " + (f"score {score:.3f}" if math.isfinite(score) else
                                           f"no score: DIVERGED at update {div}" if div >= 0 else
                                           "no score: not evaluated"))
    used = {n for n, score in zip(summary.score_evaluations, summary.scores) if math.isfinite(score)}
    made, last = used.pop() if len(used) == 1 else None, scoring.LAST_EVALS_FOR_SCORE  # (seeds share their updates)
    averaged = (f"the mean of its last {last} evaluations on the schedule" if made == last else
                f"{'its one evaluation' if made == 1 else f'the mean of its {made} evaluations'} on the schedule "
                f"(the protocol averages the last {last}; the run made {made})" if made else
                f"the mean of its last {last} evaluations on the schedule, or of all if fewer")
    lines.append(f"  {seeds_mean_text(summary.seeds, summary.scores)}"
                 + (f"; each seed's score: {averaged}" if math.isfinite(summary.mean_score) else ""))
    if reference_levels:
        lines.append("  reference levels: " + ", ".join(f"{name} {level:.3f}"
                                                       for name, level in reference_levels.items()))
    diverged = [s for s, d in zip(summary.seeds, summary.diverged_steps) if d >= 0]
    if diverged:
        lines.append(f"  diverged seeds (losses became NaN/inf, stopped): {', '.join(map(str, diverged))}")
    lines.append(f"  wall time {summary.wall_time_s:.1f} s (compile {summary.compile_time_s:.1f} s, "
                 f"training {summary.train_time_s:.1f} s)")
    lines.append(f"  throughput {summary.updates_per_s:.1f} updates/s per seed, {summary.seed_updates_per_s:.1f} "
                 f"seed-updates/s over {len(summary.seeds)} seeds (compilation excluded)")
    return "\n".join(lines + phases_lines(summary.phases, summary.process_wall_s))


def phases_lines(phases: Mapping[str, float], wall: float) -> list[str]:
    """The time breakdown as two lines: seconds and share of the process wall time per phase (none without one)."""
    if not phases or not wall > 0:
        return []
    parts = [f"{name.replace('_', ' ')} {phases[name]:.1f} s {phases[name] / wall:.0%}" for name in PHASES
             if name in phases]
    half = (len(parts) + 1) // 2
    return [f"  process time {wall:.1f} s: " + ", ".join(parts[:half]) + ",", "    " + ", ".join(parts[half:])]


def seeds_mean_text(seeds: list[int], scores: list[float]) -> str:
    """'mean score M +- S (std over N seeds (n-1))' over the seeds with a score, naming those left out."""
    kept = [s for s in scores if math.isfinite(s)]
    left_out = [str(seed) for seed, s in zip(seeds, scores) if not math.isfinite(s)]
    if not kept:
        return "mean score: none (no seed has a score)"
    text = (f"mean score {kept[0]:.3f} (one seed with a score: no std)" if len(kept) == 1 else
            f"mean score {np.mean(kept):.3f} +- {np.std(kept, ddof=1):.3f} (std over {len(kept)} seeds (n-1))")
    return text + (f"; seed{'s' * (len(left_out) > 1)} {', '.join(left_out)} left out: no score" if left_out else "")
