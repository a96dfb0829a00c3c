"""Run a DROL training job: several seeds in one compiled program, logged to a run folder.

Data flows one way: task dataset -> learner state (drol.learner, pure JAX) -> per-chunk
metrics and evaluations -> the run folder (drol_diag.runfolder.store). The host sees the state only at
chunk ends; a chunk ends at every log, evaluation and checkpoint step.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
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

from diagnostics.hooks import ProbeRecorder
from diagnostics.quantities import row_dims
from drol.config import ACTION_CLIP_EPS, LearnerConfig
from drol.learner import Learner, make_act, make_init, make_train_chunk, seed_key, static_owners
from drol.methods import make_learner
from drol_diag.runfolder import scoring, store
from drol_diag.runfolder.record import (
    comparable,
    config_record,
    diagnostics_record,
    run_dir_for,
    setting_differences,
    setting_text,
)
from drol_diag.settings import RunConfig
from drol_diag.settings.options import DEFAULT_PROBES
from drol_diag.tasks import Task
from training.memory import OWNER_CHUNK_CANDIDATES, check_fits, device_memory, estimate_memory
from training.tracking import WandbRuns

EVAL_STREAM = 0x5EED  # evaluation keys: fold_in(fold_in(seed_key(seed), EVAL_STREAM), step)


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
    score_evaluations: list[int] = dataclasses.field(default_factory=list)  # per seed: evaluations its score
    #                                             averages (0: no score); empty in a summary.json of an older version

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


def eval_seed(seed: int, step: int) -> int:
    """Episode seed of the evaluation of `seed` at `step` (a 31-bit integer)."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0] >> 1)


class DeployedPolicy:
    """One seed's deployed policy, as training evaluates it: observations (n, obs_dim) -> actions
    (n, action_dim) in [-1, 1] (numpy float32), one fresh prior sample per observation and call.

    Deterministic: call number i (from 0) draws its prior sample from fold_in(key, i), with key =
    fold_in(fold_in(seed_key(seed), EVAL_STREAM), step) for the evaluation at update `step`; `reset()`
    starts the count again. `act_fn` is the jitted `learner.act` (drol.learner.make_act: it compiles once per
    batch shape).
    Raises ValueError (one line) for observations of another shape.
    """

    def __init__(self, act_fn, actor_params, seed: int, step: int, obs_dim: int):
        self.act_fn, self.actor_params, self.obs_dim = act_fn, actor_params, int(obs_dim)
        self.seed, self.step = int(seed), int(step)
        self.key = jax.random.fold_in(jax.random.fold_in(seed_key(self.seed), EVAL_STREAM), self.step)
        self.reset()

    def reset(self) -> None:
        """Start the count of calls again: the next call draws the samples the first call drew."""
        self.calls = itertools.count()

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        observations = np.asarray(observations, np.float32)
        if observations.ndim != 2 or observations.shape[1] != self.obs_dim:
            raise ValueError(f"observations must be an array (n, {self.obs_dim}), got shape {observations.shape}")
        key = jax.random.fold_in(self.key, next(self.calls))
        return np.asarray(self.act_fn(self.actor_params, jnp.asarray(observations), key))


def evaluate_seeds(task: Task, learner, states, seeds: list[int], step: int,
                   episodes: int, act_fn) -> dict[str, np.ndarray]:
    """Evaluate every seed's deployed policy; diverged seeds get NaN. Returns {eval_<name>: (S,)}
    for each number the task's evaluator reports (eval_score always).

    `act_fn` is the jitted `learner.act`: it compiles once per batch shape, and the evaluators give
    the policy a single one (OGBench: the number of environments, see drol_diag.tasks.episodes; modes: its
    evaluation states), so a run compiles it once. The policy is deterministic (DeployedPolicy): each
    call draws its prior sample from fold_in(key of (seed, step), call number)."""
    results: list[dict[str, float]] = []
    diverged = np.asarray(states.diverged)
    for i, seed in enumerate(seeds):
        if diverged[i]:
            results.append({})
            continue
        params = jax.tree.map(lambda x, i=i: x[i], states.actor_params)
        policy = DeployedPolicy(act_fn, params, seed, step, learner.obs_dim)
        results.append(task.evaluate(policy, episodes, eval_seed(seed, step)))
    names = sorted({k for r in results for k in r if isinstance(r[k], (int, float))} | {"score"})  # (all diverged too)
    return {f"eval_{name}": np.array([float(r.get(name, np.nan)) for r in results]) for name in names}


def final_scores(logged: xr.Dataset, diverged: np.ndarray) -> tuple[list[float], list[int]]:
    """Per seed, the protocol score (drol_diag.runfolder.scoring.run_scores) of the logged evaluations
    that count (eval_counted: on the run's final schedule), and how many evaluations it averages."""
    if "eval_score" not in logged:
        return [float("nan")] * len(diverged), [0] * len(diverged)
    values, counted = logged["eval_score"].values, scoring.logged_counted(logged["eval_counted"].values)
    return ([float(s) for s in scoring.run_scores(values, counted, diverged)],
            [int(n) for n in scoring.scored_evaluations(values, counted, diverged)])


def mark_counted_evaluations(rows: xr.Dataset | None, eval_interval: int, end_step: int) -> xr.Dataset | None:
    """Logged evaluation rows (seed, eval_step) with `eval_counted` set by the final schedule
    (scoring.counted_evaluations with `end_step`). A resume that extends a run moves its end: the
    previous leg's final evaluation, off the grid, stays in the log and stops counting."""
    if rows is None or "eval_step" not in rows.dims:
        return rows
    counted = scoring.counted_evaluations(rows["eval_step"].values, eval_interval, end_step)
    return rows.assign(eval_counted=(("seed", "eval_step"), np.tile(counted, (rows.sizes["seed"], 1))))


def weighted_means(chunks: list[tuple[int, dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """Means over all updates of several chunks, from each chunk's length and means {name: (S,)}."""
    total = sum(length for length, _ in chunks)
    return {name: sum(length * means[name] for length, means in chunks) / total for name in chunks[0][1]}


def check_writable_folder(folder: Path, out: Path) -> None:
    """Raise RunError (one line naming --out) unless `folder` (`out` or a folder under it) is a folder, or
    can be made one, that this process may write in: its nearest existing ancestor must be a folder (not
    a file) in which a folder can be made (tried: store.cannot_write_in)."""
    existing = Path(folder)
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "a file" if existing.is_file() else "not a folder"
        raise RunError(f"--out {out}: {existing} is {what}; give a folder (it is made if missing)")
    reason = store.cannot_write_in(existing)
    if reason:
        raise RunError(f"--out {out}: cannot make a folder in {existing} ({reason}); give a folder you can write in")


def check_run(task: Task, learner_config: LearnerConfig, run: RunConfig, out: Path, run_dir: Path,
              num_probes: int) -> None:
    """What train() checks before it writes anything (its lock included): --out can hold the run folder,
    and the run fits in the device's memory (training.memory; `num_probes` 0: no diagnostics).
    Raises RunError (one line). A batch larger than the training set is allowed, and said on stderr."""
    check_writable_folder(run_dir, out)
    transitions = len(task.dataset["actions"])
    seeds = len(run.seeds)
    estimate = estimate_memory(learner_config, task.obs_dim, task.action_dim, transitions, seeds, num_probes, run)
    try:
        check_fits(estimate, device_memory(), f"this run ({seeds} seed{'s' * (seeds != 1)}, K "
                                              f"{learner_config.num_candidates}, batch {learner_config.batch_size}, "
                                              f"{transitions} transitions)")
    except ValueError as error:
        raise RunError(str(error)) from None
    if learner_config.batch_size > transitions:
        print(f"note: --batch-size {learner_config.batch_size} is larger than the training set ({transitions} "
              "transitions); batches are drawn with replacement, so each batch repeats transitions", file=sys.stderr)


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
def owner_table_program(learner: Learner, n: int, rows: int):
    """The jitted owners of `rows` training rows from `start` under the initial parameters of every seed:
    (actor_params, bank_keys, observations (N, obs), actions (N, d), start) -> (S, rows); one per (learner, N, rows)
    in a process."""
    def chunk(actor_params, bank_keys, all_observations, all_actions, start):
        indices = jnp.minimum(start + jnp.arange(rows), n - 1)  # the last chunk repeats row n-1, then is cut
        observations, actions = all_observations[indices], all_actions[indices]
        return jax.vmap(lambda params, key: static_owners(learner, params, key, indices, observations, actions))(
            actor_params, bank_keys)
    return jax.jit(chunk)


def static_owner_table(learner: Learner, states, dataset: dict[str, jnp.ndarray], progress: bool):
    """Static routing: every transition's owner under the initial parameters, computed once over
    the whole training set in chunks (a progress bar), stored in the states as owners (S, N)."""
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


def matmul_precision(run: RunConfig) -> Any:
    """The context every program of `run` is traced in: JAX's jax_default_matmul_precision at the run's
    --matmul-precision (jax.default_matmul_precision; part of jit's cache key, so a program traced at one
    precision is never reused at another)."""
    return jax.default_matmul_precision(run.matmul_precision)


def train(task: Task, learner_config: LearnerConfig, run: RunConfig, out: Path, *, resume: bool = False,
          force: bool = False, progress: bool = True, config_extra: dict[str, Any] | None = None,
          diagnostics: bool = True, num_probes: int = DEFAULT_PROBES, wandb: str | None = None) -> RunSummary:
    """Train every seed of `run` on `task`, logging to the run folder; returns the summary.

    With `diagnostics`, every log row also holds the probe diagnostics of `num_probes` probe
    transitions per seed (diagnostics.hooks). With `wandb` (a W&B project), each seed is also a W&B run
    fed from the rows written to the log (training.tracking). Raises RunError for a conflicting
    run folder.
    """
    started = time.perf_counter()
    run_dir = run_dir_for(out, run, learner_config)
    check_run(task, learner_config, run, out, run_dir, num_probes if diagnostics else 0)
    with store.run_lock(run_dir), matmul_precision(run):
        return _train_locked(task, learner_config, run, run_dir, started, resume=resume, force=force,
                             progress=progress, config_extra=config_extra, diagnostics=diagnostics,
                             num_probes=num_probes, wandb=wandb)


def _train_locked(task: Task, learner_config: LearnerConfig, run: RunConfig, run_dir: Path, started: float, *,
                  resume: bool, force: bool, progress: bool, config_extra: dict[str, Any] | None,
                  diagnostics: bool, num_probes: int, wandb: str | None = None) -> RunSummary:
    """train() while holding the run folder's lock."""
    seeds = list(run.seeds)
    learner = make_learner(learner_config, task.obs_dim, task.action_dim, len(task.dataset["actions"]))
    record = config_record(learner_config, run, task, {
        **(config_extra or {}),
        "diagnostics": diagnostics_record(diagnostics, num_probes, len(task.dataset["actions"])),
        **({"wandb": wandb} if wandb else {})})
    prepare_run_dir(run_dir, record, resume, force)
    store.remove_stale_versions(run_dir)

    dataset = device_dataset(task.dataset)
    states = make_init(learner)(jnp.asarray(seeds, jnp.int32))
    start = 0
    since_log: list[tuple[int, dict[str, np.ndarray]]] = []  # (length, chunk means (S,)) since the last row
    restored = store.load_checkpoint(run_dir, states) if resume else None
    if restored is not None:
        states = jax.tree.map(jnp.asarray, restored[0])
        start = int(restored[1]["step"])
        since_log = [(length, {k: np.asarray(v, np.float32) for k, v in means.items()})  # chunk means are float32
                     for length, means in restored[1].get("since_log", [])]
    if start > run.steps:
        raise RunError(f"{run_dir} is already at step {start}, beyond --steps {run.steps}")
    if restored is not None and start == run.steps and (run_dir / store.SUMMARY_FILE).exists():
        finished = store.read_json(run_dir / store.SUMMARY_FILE)  # nothing to do: report it, rewrite nothing
        return RunSummary(**{f.name: finished[f.name] for f in dataclasses.fields(RunSummary) if f.name in finished})
    if restored is None and getattr(learner_config, "refresh_interval", 1) == 0:
        states = static_owner_table(learner, states, dataset, progress)

    recorder = ProbeRecorder(learner, task, dataset, seeds, num_probes) if diagnostics else None
    attrs = {"task": run.task, "ablation": run.ablation, "num_candidates": learner_config.num_candidates,
             **store.flatten_attrs(record)}
    log = store.RunLog(run_dir, seeds, attrs, recorder.static_variables() if recorder else None, row_dims())
    if resume:  # (no checkpoint: start is 0 and rows of a run killed before its first checkpoint are dropped)
        kept = log.load(start, run.log_interval)
        log.written["eval_step"] = mark_counted_evaluations(log.written["eval_step"], run.eval_interval, run.steps)
        if recorder is not None and kept is not None and "winner" in kept:
            recorder.replay(kept["winner"].values, kept["nearest"].values)
    tracker = start_tracking(wandb, run_dir, record, run, learner_config, log) if wandb else None

    act_fn = make_act(learner)
    compiled: dict[int, Any] = {}
    compile_time = train_time = 0.0
    bar = tqdm(total=run.steps, initial=start, unit="upd", disable=not progress, dynamic_ncols=True,
               desc=f"{run.task} {run.ablation} K={learner_config.num_candidates} seeds={len(seeds)}",
               file=sys.stderr)
    step = start
    try:
        for end in chunk_boundaries(start, run):
            length = end - step
            if length not in compiled:
                t0 = time.perf_counter()
                bar.set_postfix_str("compiling")
                compiled[length] = make_train_chunk(learner, length).lower(states, dataset).compile()
                compile_time += time.perf_counter() - t0
            t0 = time.perf_counter()
            states, chunk_metrics = compiled[length](states, dataset)
            chunk_metrics = jax.tree.map(np.asarray, chunk_metrics)  # waits for the chunk
            train_time += time.perf_counter() - t0
            step = end
            written: dict[str, dict[str, np.ndarray]] = {}  # {row dim: row} appended to the log at this step
            since_log.append((length, chunk_metrics))
            bar.update(length)
            healthy = ~np.asarray(states.diverged)
            losses = {name: f"{np.mean(chunk_metrics[name + '_loss'][healthy]):.3g}" if healthy.any() else "nan"
                      for name in ("critic", "actor")}
            bar.set_postfix(train_upd_s=f"{(step - start) / train_time:.1f}", **losses)

            last = step == run.steps or not healthy.any()  # (every seed diverged: nothing left to train)
            on_grid = step % run.log_interval == 0
            if on_grid or last:
                row = {**weighted_means(since_log), "diverged": np.asarray(states.diverged)}
                if recorder is not None:
                    row.update(recorder.row(states, step))
                log.append("step", step, row)
                written["step"] = row
                # A final row off the log grid does not close the averaging window: a resumed run
                # carries these chunks into its next row (and drops this row), as if never stopped.
                since_log = [] if on_grid else since_log
            if task.evaluate is not None and (step % run.eval_interval == 0 or last):
                counted = scoring.counted_evaluations(np.array([step]), run.eval_interval, step if last else run.steps)
                written["eval_step"] = {**evaluate_seeds(task, learner, states, seeds, step, run.eval_episodes, act_fn),
                                        "eval_counted": np.full(len(seeds), counted[0])}
                log.append("eval_step", step, written["eval_step"])
            if on_grid or step % run.eval_interval == 0 or last:
                log.flush()
            if tracker is not None:  # (after the flush: W&B gets rows the log holds)
                tracker.log(step, written)
            if step % run.checkpoint_interval == 0 or last:
                log.flush()
                store.save_checkpoint(run_dir, states, {"step": step, "seeds": seeds, "since_log": since_log})
            if last:
                break
    finally:
        bar.close()
        log.flush()
        if tracker is not None:
            tracker.close(failed=sys.exc_info()[0] is not None)

    wall = time.perf_counter() - started
    rate = (step - start) / train_time if train_time > 0 else float("nan")
    scores, score_evaluations = final_scores(log.dataset(), np.asarray(states.diverged))
    summary = RunSummary(run_dir=str(run_dir), seeds=seeds, scores=scores,
                         diverged_steps=[int(s) for s in np.asarray(states.diverged_step)], steps=step,
                         wall_time_s=wall, compile_time_s=compile_time, train_time_s=train_time,
                         updates_per_s=rate, seed_updates_per_s=rate * len(seeds), score_evaluations=score_evaluations)
    store.write_json_atomic(run_dir / store.SUMMARY_FILE,
                            {**dataclasses.asdict(summary), "mean_score": summary.mean_score})
    return summary


def start_tracking(project: str, run_dir: Path, record: dict[str, Any], run: RunConfig,
                   learner_config: LearnerConfig, log: store.RunLog) -> WandbRuns:
    """The W&B runs of the run's seeds (training.tracking), named <task>/<ablation>/k<K>/seed<seed> (a run
    of a sweep's grid: <task>/<ablation>/k<K>/bc_coef=0.3/seed<seed>),
    grouped by the results folder, given the rows the log already holds that they lack (a resume).
    Raises RunError (one line) when wandb cannot start them."""
    out = run_dir.parent.parent.resolve()  # (run_dir_for: <out>/<task>/<ablation>-k<K>)
    try:
        point = "".join(f"/{name}={setting_text(getattr(learner_config, name))}" for name in run.grid_settings)
        tracker = WandbRuns(project, run_dir, record, list(run.seeds),
                            f"{run.task}/{run.ablation}/k{learner_config.num_candidates}{point}", out.name, out)
    except Exception as error:  # noqa: BLE001  (wandb raises its own errors: no network, bad credentials, ...)
        raise RunError(f"cannot start the W&B runs of --wandb {project}: "
                       f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None
    tracker.backfill(log.dataset())
    return tracker


def format_summary(summary: RunSummary, reference_levels: Mapping[str, float] | None = None) -> str:
    """A short human-readable summary of a run, with the task's reference levels (Task.reference_levels:
    what fixed policies score on it) beside the scores where given."""
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
    return "\n".join(lines)


def seeds_mean_text(seeds: list[int], scores: list[float]) -> str:
    """'mean score M +- S (std over N seeds (n-1))' over the seeds with a score, naming those left out; the one
    spread convention of the run output (the sample standard deviation), and never a NaN mean."""
    kept = [s for s in scores if math.isfinite(s)]
    left_out = [str(seed) for seed, s in zip(seeds, scores) if not math.isfinite(s)]
    if not kept:
        return "mean score: none (no seed has a score)"
    text = (f"mean score {kept[0]:.3f} (one seed with a score: no std)" if len(kept) == 1 else
            f"mean score {np.mean(kept):.3f} +- {np.std(kept, ddof=1):.3f} (std over {len(kept)} seeds (n-1))")
    return text + (f"; seed{'s' * (len(left_out) > 1)} {', '.join(left_out)} left out: no score" if left_out else "")
