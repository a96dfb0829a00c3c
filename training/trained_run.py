"""A finished (or stopped) run, loaded back from its folder without its task's data: its configs, each seed's
policy from the last checkpoint, and an evaluation of it that matches the run's last logged one number for number
(docs/options.md: `trained = load_run(run_dir)`, `trained.policies[seed](observations)`, `evaluate_run(trained)`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from drol.config import LearnerConfig, learner_config_class
from drol.learner import make_init
from drol.methods import make_learner
from drol.variants import variant
from drol_diag.runfolder import store
from drol_diag.settings import RunConfig
from drol_diag.tasks import Task, load_task
from training.driver import matmul_precision
from training.evaluation import DeployedPolicy, act_program, eval_seed, evaluate_seeds

EVALUATIONS_FILE = "evaluations.json"  # `drol-diag evaluate --write`: every evaluation record, oldest first


@dataclass(frozen=True)
class TrainedRun:
    """A run folder's configs and last checkpoint, with a deployed policy per seed: (n, obs_dim) -> (n, action_dim)
    (evaluation.DeployedPolicy; a diverged seed's holds the parameters frozen before its losses became NaN/inf)."""

    run_dir: Path
    learner: LearnerConfig
    run: RunConfig
    config: dict[str, Any]  # config.json as written
    step: int  # updates in the checkpoint (every seed)
    seeds: tuple[int, ...]  # the run's seeds, in the checkpoint's order
    diverged_steps: dict[int, int]  # per seed: the update at which it diverged, -1 if never
    policies: dict[int, DeployedPolicy]
    obs_dim: int
    action_dim: int
    states: Any = dataclasses.field(repr=False)  # the whole seed-stacked training state (host arrays)
    model: Any = dataclasses.field(repr=False)  # drol.learner.Learner or drol.fql.FQLLearner
    act_fn: Any = dataclasses.field(repr=False)  # jitted model.act, shared by the policies


@dataclass(frozen=True)
class RunEvaluation:
    """One evaluation of a run's checkpoint: per seed, every number the task's evaluator reports."""

    run_dir: Path
    step: int  # the checkpoint's update
    episodes: int
    seeds: tuple[int, ...]
    results: dict[str, np.ndarray]  # {"eval_score": (S,), ...}; NaN for a diverged seed
    episode_seeds: tuple[int, ...]  # per seed: the evaluator's seed (evaluation.eval_seed(seed, step))

    @property
    def scores(self) -> np.ndarray:
        return self.results["eval_score"]

    @property
    def mean_score(self) -> float:
        finite = self.scores[np.isfinite(self.scores)]
        return float(finite.mean()) if finite.size else float("nan")

    def record(self) -> dict[str, Any]:
        """As JSON (`drol-diag evaluate --write` / `--json`)."""
        number = lambda value: float(value) if np.isfinite(value) else None  # (JSON has no NaN: null)
        return {"run_dir": str(self.run_dir), "step": self.step, "episodes": self.episodes, "seeds": list(self.seeds),
                "episode_seeds": list(self.episode_seeds), "mean_score": number(self.mean_score),
                **{name: [number(v) for v in values] for name, values in self.results.items()}}


def load_run(path: str | Path) -> TrainedRun:
    """Load a run folder's configs and every seed's policy from its checkpoint. Writes nothing. Raises ValueError
    (one line) for a folder that is not a run folder or has no checkpoint."""
    run_dir = Path(path)
    config_path = run_dir / store.CONFIG_FILE
    if not run_dir.is_dir():
        raise ValueError(f"no such run folder: {run_dir} (a run folder is <out>/<task>/<ablation>-k<K>, "
                         "written by drol-diag run)")
    if not config_path.is_file():
        raise ValueError(f"{run_dir} is not a run folder: it has no {store.CONFIG_FILE} (a run folder is "
                         "<out>/<task>/<ablation>-k<K>, written by drol-diag run)")
    try:
        config = store.read_json(config_path)
        learner_config, run_config = configs_of(config)
        obs_dim, action_dim = int(config["task"]["obs_dim"]), int(config["task"]["action_dim"])
        transitions = int(config["task"]["transitions"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"cannot read {config_path}: {type(error).__name__}: {error}") from None
    model = make_learner(learner_config, obs_dim, action_dim, transitions)
    seeds = tuple(run_config.seeds)
    shapes = jax.eval_shape(make_init(model), jnp.asarray(seeds, jnp.int32))  # (no program compiled or run)
    template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    try:
        restored = store.load_checkpoint(run_dir, template)
    except Exception as error:  # noqa: BLE001 - a damaged or foreign checkpoint raises whatever msgpack/flax meets
        raise ValueError(f"cannot read {run_dir / store.CHECKPOINT_FILE}: {type(error).__name__}: {error}") from None
    if restored is None:
        raise ValueError(f"{run_dir} has no checkpoint ({store.CHECKPOINT_FILE}): the run stopped before its first; "
                         "train it with drol-diag run --resume")
    states, extra = restored
    step = int(extra["step"])
    act_fn = act_program(model)
    policies = {seed: DeployedPolicy(act_fn, jax.tree.map(lambda x, i=i: x[i], states.actor_params), seed, step,
                                     obs_dim) for i, seed in enumerate(seeds)}
    diverged = {seed: int(d) for seed, d in zip(seeds, np.asarray(states.diverged_step))}
    return TrainedRun(run_dir=run_dir, learner=learner_config, run=run_config, config=config, step=step, seeds=seeds,
                      diverged_steps=diverged, policies=policies, obs_dim=obs_dim, action_dim=action_dim,
                      states=states, model=model, act_fn=act_fn)


def configs_of(config: dict[str, Any]) -> tuple[LearnerConfig, RunConfig]:
    """The learner and run configs a config.json records."""
    run = from_record(RunConfig, config["run"])
    return from_record(learner_config_class(variant(run.ablation).method), config["learner"]), run


def from_record(config_class: type, record: dict[str, Any]) -> Any:
    """`config_class` from its config.json section: its own fields, lists back to tuples."""
    names = {f.name for f in dataclasses.fields(config_class)}
    return config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in record.items() if k in names})


def evaluation_settings(trained: TrainedRun, episodes: int | None = None,
                        seeds: tuple[int, ...] | None = None) -> tuple[int, tuple[int, ...]]:
    """The episodes per seed and seeds (default: the run's) of an evaluation of `trained`. Raises ValueError
    (one line) for episodes < 1 or seeds not in the run."""
    episodes = trained.run.eval_episodes if episodes is None else int(episodes)
    if episodes < 1:
        raise ValueError(f"--episodes must be a positive integer, got {episodes}")
    seeds = trained.seeds if seeds is None else tuple(seeds)
    unknown = [s for s in seeds if s not in trained.seeds]
    if unknown or not seeds:
        listed = f"seed {unknown[0]} is" if len(unknown) == 1 else \
            f"seeds {','.join(map(str, unknown)) or '(none)'} are"
        raise ValueError(f"{listed} not in the run {trained.run_dir} (its seeds: {','.join(map(str, trained.seeds))})")
    return episodes, seeds


def evaluation_task(trained: TrainedRun, dataset_dir: str | None = None) -> Task:
    """The run's task, to evaluate its policies. Raises ValueError (one line) for a task that cannot be loaded,
    has no evaluator, or now has other dimensions than the run was trained on."""
    task = load_task(trained.run.task, dataset_dir)
    if task.evaluate is None:
        raise ValueError(f"task {trained.run.task} has no evaluator: its runs cannot be evaluated")
    if (task.obs_dim, task.action_dim) != (trained.obs_dim, trained.action_dim):
        raise ValueError(f"task {trained.run.task} now has observations of {task.obs_dim} and actions of "
                         f"{task.action_dim} numbers; the run was trained on {trained.obs_dim} and "
                         f"{trained.action_dim}")
    return task


def evaluate_run(trained: TrainedRun, episodes: int | None = None, seeds: tuple[int, ...] | None = None,
                 dataset_dir: str | None = None, task: Task | None = None) -> RunEvaluation:
    """Evaluate the checkpoint's policies on the run's task as training evaluates them. Writes nothing. Raises
    ValueError (one line) as evaluation_settings and evaluation_task do."""
    episodes, seeds = evaluation_settings(trained, episodes, seeds)
    task = evaluation_task(trained, dataset_dir) if task is None else task
    positions = np.asarray([trained.seeds.index(s) for s in seeds])
    states = jax.tree.map(lambda x: x[positions], trained.states)
    with matmul_precision(trained.run):  # (as training evaluated)
        results = evaluate_seeds(task, trained.model, states, list(seeds), trained.step, episodes, trained.act_fn)
    return RunEvaluation(run_dir=trained.run_dir, step=trained.step, episodes=episodes, seeds=seeds, results=results,
                         episode_seeds=tuple(eval_seed(s, trained.step) for s in seeds))


def append_evaluation(run_dir: Path, record: dict[str, Any]) -> Path:
    """Add `record` to the run folder's evaluations.json atomically. Hold the run's lock (store.run_lock)."""
    path = Path(run_dir) / EVALUATIONS_FILE
    records = store.read_json(path) if path.exists() else []
    store.write_json_atomic(path, [*records, record])
    return path
