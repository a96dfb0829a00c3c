"""Tasks: the dataset arrays a learner trains on, plus an optional way to score a policy.

The Task interface is deliberately small, so users can bring their own data:

    Task(name, dataset, validation=None, evaluate=None)

- `dataset` and `validation`: dicts of float32 arrays with N rows each:
  observations (N, obs_dim), actions (N, action_dim) in [-1, 1], rewards (N,),
  masks (N,) (0 where the episode truly terminates, else 1), next_observations (N, obs_dim).
- `evaluate(policy, num_episodes, seed) -> {"score": float, ...}` where `policy` is a batched
  function from observations (n, obs_dim) to actions (n, action_dim).

Two kinds of task live here: the embedded synthetic `modes` family (no download, no
simulator, scored in closed form) and OGBench single-task datasets read from local files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]
Evaluator = Callable[[Policy, int, int], dict]
DATASET_KEYS = ("observations", "actions", "rewards", "masks", "next_observations")


@dataclass(frozen=True)
class Task:
    """A dataset (dict of arrays, see module docstring) and an optional evaluator."""

    name: str
    dataset: dict[str, np.ndarray] = field(repr=False)
    validation: dict[str, np.ndarray] | None = field(default=None, repr=False)
    evaluate: Evaluator | None = field(default=None, repr=False)

    @property
    def obs_dim(self) -> int:
        return int(self.dataset["observations"].shape[-1])

    @property
    def action_dim(self) -> int:
        return int(self.dataset["actions"].shape[-1])


def validate_dataset(dataset: dict[str, np.ndarray], what: str = "dataset") -> None:
    """Raise ValueError (one line: what is wrong, what is valid) for a malformed dataset."""
    missing = [k for k in DATASET_KEYS if k not in dataset]
    if missing:
        raise ValueError(f"{what} lacks keys {', '.join(missing)}; a dataset needs {', '.join(DATASET_KEYS)}")
    n = len(dataset["actions"])
    if n == 0:
        raise ValueError(f"{what} has no transitions")
    for key in DATASET_KEYS:
        array = np.asarray(dataset[key])
        if len(array) != n:
            raise ValueError(f"{what}: {key} has {len(array)} rows but actions has {n}; all keys need the same rows")
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{what}: {key} has dtype {array.dtype}; numeric arrays are required")
        bad = ~np.isfinite(array)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise ValueError(f"{what}: {key} contains NaN or inf (first at row {row}); all values must be finite")
    for key, ndim in (("observations", 2), ("actions", 2), ("next_observations", 2), ("rewards", 1), ("masks", 1)):
        if np.ndim(dataset[key]) != ndim:
            raise ValueError(f"{what}: {key} has shape {np.shape(dataset[key])}; expected {ndim}-D")
    if dataset["observations"].shape[1] != dataset["next_observations"].shape[1]:
        raise ValueError(f"{what}: observations and next_observations differ in width")


# --------------------------------------------------------------------------------------------
# The embedded `modes` family: a one-step contextual bandit with several supported action
# modes per state, of different value; the best mode is usually not the one nearest a given
# dataset action (a dataset action comes from a uniformly chosen mode).


@dataclass(frozen=True)
class ModesSpec:
    """Parameters of a `modes` task. Generation is deterministic from `seed`."""

    action_dim: int = 2  # d
    obs_dim: int = 2  # states uniform in [-1, 1]^obs_dim
    num_modes: int = 4  # M supported action modes per state
    radius: float = 0.6  # distance of each mode centre from the origin
    max_rotation: float = math.pi / 2  # the state rotates the modes by up to this angle per plane
    action_noise: float = 0.05  # std of the Gaussian noise around the chosen mode (dataset)
    bump_width: float = 0.15  # std of each Gaussian reward bump
    top_value: float = 1.0  # height of the best mode's bump
    bottom_value: float = 0.25  # height of the worst mode's bump (heights linear in between)
    num_transitions: int = 20_000  # training transitions
    num_validation: int = 2_000  # held-out transitions
    eval_states: int = 4096  # fresh states per evaluation
    seed: int = 0  # seed of the task geometry and data


MODES_TASKS: dict[str, ModesSpec] = {
    "modes-2d": ModesSpec(),
    "modes-5d": ModesSpec(action_dim=5, obs_dim=5, num_modes=6),
}


class ModesGeometry:
    """Closed-form geometry and reward of a `modes` task (jnp functions, usable under jit)."""

    def __init__(self, spec: ModesSpec):
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        d, m = spec.action_dim, spec.num_modes
        if m <= 2 * d:  # vertices of the cross-polytope: e1, -e1, e2, -e2, ...
            directions = np.zeros((m, d))
            directions[np.arange(m), np.arange(m) // 2] = np.where(np.arange(m) % 2 == 0, 1.0, -1.0)
        else:  # more modes than the cross-polytope has vertices: random unit directions
            v = rng.normal(size=(m, d))
            directions = v / np.linalg.norm(v, axis=-1, keepdims=True)
        self.directions = jnp.asarray(directions, jnp.float32)  # (M, d)
        heights = np.linspace(spec.top_value, spec.bottom_value, m)
        self.heights = jnp.asarray(rng.permutation(heights), jnp.float32)  # (M,)
        # Each Givens plane (i, i+1) turns by max_rotation * mean(w_i * s), w_i in {-1, +1}^obs.
        self.plane_weights = jnp.asarray(rng.choice([-1.0, 1.0], size=(max(d - 1, 1), spec.obs_dim)), jnp.float32)

    def centres(self, observations: jnp.ndarray) -> jnp.ndarray:
        """Mode centres (n, M, d) for observations (n, obs_dim)."""
        d = self.spec.action_dim
        angles = self.spec.max_rotation * (observations @ self.plane_weights.T) / self.spec.obs_dim  # (n, d-1)
        points = jnp.broadcast_to(self.spec.radius * self.directions, (observations.shape[0], *self.directions.shape))
        for plane in range(d - 1):
            cos, sin = jnp.cos(angles[:, plane])[:, None], jnp.sin(angles[:, plane])[:, None]
            x, y = points[..., plane], points[..., plane + 1]
            points = points.at[..., plane].set(cos * x - sin * y).at[..., plane + 1].set(sin * x + cos * y)
        return points

    def reward(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """r(s, a) = sum_m h_m exp(-|a - c_m(s)|^2 / (2 w^2)); shape (n,)."""
        sq = jnp.sum(jnp.square(actions[:, None, :] - self.centres(observations)), axis=-1)
        return jnp.sum(self.heights * jnp.exp(-sq / (2 * self.spec.bump_width**2)), axis=-1)

    def best_value(self, observations: jnp.ndarray) -> jnp.ndarray:
        """Value of the best supported mode, max_m r(s, c_m(s)); shape (n,)."""
        centres = self.centres(observations)
        values = jax.vmap(lambda c: self.reward(observations, c), in_axes=1, out_axes=1)(centres)
        return jnp.max(values, axis=-1)

    def best_action(self, observations: jnp.ndarray) -> jnp.ndarray:
        """Centre of the highest mode (the oracle policy); shape (n, d)."""
        return self.centres(observations)[:, jnp.argmax(self.heights)]

    def mean_action(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The dataset-average (BC) policy: the conditional mean of the data actions, i.e. the mean
        of the mode centres, which a unimodal regression policy converges to; shape (n, d)."""
        return jnp.mean(self.centres(observations), axis=1)

    def sample(self, key: jax.Array, n: int) -> dict[str, jnp.ndarray]:
        """n transitions: a uniform mode plus Gaussian noise, horizon 1 (masks 0)."""
        state_key, mode_key, noise_key = jax.random.split(key, 3)
        observations = jax.random.uniform(state_key, (n, self.spec.obs_dim), minval=-1.0, maxval=1.0)
        modes = jax.random.randint(mode_key, (n,), 0, self.spec.num_modes)
        centres = jnp.take_along_axis(self.centres(observations), modes[:, None, None], axis=1)[:, 0]
        noise = self.spec.action_noise * jax.random.normal(noise_key, centres.shape)
        actions = jnp.clip(centres + noise, -1.0, 1.0)
        return dict(observations=observations, actions=actions, rewards=self.reward(observations, actions),
                    masks=jnp.zeros(n), next_observations=observations, modes=modes)

    def score(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """Expected reward of the actions over the states, relative to the best mode's (1.0 = best)."""
        return jnp.mean(self.reward(observations, actions)) / jnp.mean(self.best_value(observations))


def modes_task(name: str, spec: ModesSpec | None = None) -> Task:
    """Build a `modes` task (deterministic from spec.seed); `spec` overrides the named defaults."""
    spec = spec or MODES_TASKS[name]
    geometry = ModesGeometry(spec)
    key = jax.random.PRNGKey(spec.seed)
    data_key, val_key, eval_key = jax.random.split(key, 3)
    to_numpy = lambda d: {k: np.asarray(v, np.int32 if k == "modes" else np.float32) for k, v in d.items()}
    dataset = to_numpy(geometry.sample(data_key, spec.num_transitions))
    validation = to_numpy(geometry.sample(val_key, spec.num_validation))
    score_fn = jax.jit(geometry.score)

    def evaluate(policy: Policy, num_episodes: int, seed: int) -> dict:
        """Score on `spec.eval_states` fresh states (each a one-step episode); num_episodes unused."""
        del num_episodes
        states = jax.random.uniform(jax.random.fold_in(eval_key, seed), (spec.eval_states, spec.obs_dim),
                                    minval=-1.0, maxval=1.0)
        actions = np.asarray(policy(np.asarray(states)), np.float32)
        return {"score": float(score_fn(states, jnp.asarray(actions)))}

    return Task(name=name, dataset=dataset, validation=validation, evaluate=evaluate)


# --------------------------------------------------------------------------------------------
# OGBench single-task datasets, read from local files only (never downloaded).

DEFAULT_OGBENCH_DIR = "~/.ogbench/data"


def ogbench_dataset_dir(dataset_dir: str | None = None) -> str:
    """The dataset folder: the argument, else $OGBENCH_DATA_DIR, else ~/.ogbench/data."""
    return os.path.expanduser(dataset_dir or os.environ.get("OGBENCH_DATA_DIR") or DEFAULT_OGBENCH_DIR)


OGBENCH_URL = "https://rail.eecs.berkeley.edu/datasets/ogbench/"
OGBENCH_FILE_KEYS = ("observations", "actions", "terminals", "qpos", "qvel")  # every official file has these
OGBENCH_BUTTON_ENVS = ("scene", "puzzle")  # their files also need button_states (for the rewards)


def _ogbench_names(name: str) -> tuple[str, str]:
    """(environment name, dataset file stem) of a single-task name, by ogbench's own rule.

    cube-single-play-singletask-task2-v0 -> (cube-single-singletask-task2-v0, cube-single-play-v0): the
    environment drops the dataset type ('play'); the files drop 'singletask' and 'taskN'.
    """
    parts = name.split("-")
    if "singletask" not in parts or parts.index("singletask") < 2 or parts[-1] == "singletask":
        raise ValueError(f"{name!r} is not an OGBench single-task name; expected <env>-<dataset type>-singletask"
                         "[-taskN]-<version>, e.g. cube-single-play-singletask-task2-v0")
    pos = parts.index("singletask")
    return "-".join(parts[: pos - 1] + parts[pos:]), "-".join(parts[:pos] + parts[-1:])


def _ogbench_env_families() -> list[str]:
    """Environment prefixes with state-based single-task variants, e.g. ['antmaze-large', 'cube-single', ...]."""
    import gymnasium
    import ogbench  # noqa: F401  (registers the environments)

    return sorted({env_id.split("-singletask")[0] for env_id in gymnasium.registry
                   if "-singletask" in env_id and not env_id.startswith("visual-")})


def _check_ogbench_env(name: str, env_name: str) -> None:
    """Raise ValueError unless gymnasium knows `env_name` and it has state (not pixel) observations."""
    import gymnasium
    import ogbench  # noqa: F401  (registers the environments)

    try:
        gymnasium.spec(env_name)
        known = not env_name.startswith("visual-")
    except gymnasium.error.Error:
        known = False
    if not known:
        raise ValueError(f"unknown OGBench single-task environment {env_name!r} (from {name!r}); valid names are "
                         f"<env>-<dataset type>-singletask[-task1..5]-v0 with <env> one of "
                         f"{', '.join(_ogbench_env_families())}, e.g. cube-single-play-singletask-task2-v0")


def ogbench_files(name: str, dataset_dir: str | None = None) -> tuple[str, str]:
    """Paths (train, validation) of the files a single-task name reads, e.g. for
    cube-single-play-singletask-task2-v0: (<dir>/cube-single-play-v0.npz, <dir>/cube-single-play-v0-val.npz)."""
    _, stem = _ogbench_names(name)
    folder = ogbench_dataset_dir(dataset_dir)
    return os.path.join(folder, f"{stem}.npz"), os.path.join(folder, f"{stem}-val.npz")


def _require_ogbench_files(name: str, dataset_dir: str | None) -> tuple[str, str, str]:
    """(environment name, train path, validation path) of a single-task name, after checking that the
    environment exists and both files are present (ogbench's loader would try to download a missing one)."""
    env_name, stem = _ogbench_names(name)
    _check_ogbench_env(name, env_name)
    train_path, val_path = ogbench_files(name, dataset_dir)
    missing = [path for path in (train_path, val_path) if not os.path.isfile(path)]
    if missing:
        files, them = ("files", "them") if len(missing) == 2 else ("file", "it")
        raise ValueError(f"missing OGBench dataset {files} {' and '.join(missing)}; generate {them} with "
                         f"`drol-diag data generate {stem}` or copy the official files ({OGBENCH_URL}) into "
                         f"{os.path.dirname(train_path)} on a machine with network")
    return env_name, train_path, val_path


def _check_ogbench_file(path: str, required_keys: tuple[str, ...]) -> None:
    """Raise ValueError (one line naming the file) unless `path` is an npz archive with `required_keys`
    and its last row ends an episode (terminals[-1] == 1)."""
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an npz archive of named arrays")
        with archive:
            missing = [key for key in required_keys if key not in archive.files]
            if missing:
                raise ValueError(f"it lacks {', '.join(missing)} (has {', '.join(archive.files) or 'nothing'}); "
                                 f"an OGBench file needs {', '.join(required_keys)}")
            terminals = archive["terminals"]
            if terminals.ndim != 1 or len(terminals) < 2 or not terminals[-1]:
                raise ValueError(f"terminals has shape {terminals.shape} and last value "
                                 f"{terminals[-1] if terminals.size else None}; expected (N,) with N >= 2 and a 1 "
                                 "on each episode's last row")
    except Exception as error:  # not a zip, truncated, pickled, missing keys, ...
        problem = str(error).replace("\n", " ") or type(error).__name__
        raise ValueError(f"bad OGBench dataset file {path}: {problem}") from error


def _ogbench_arrays(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The Task arrays (float32, N rows) from ogbench's loader output (episode ends already dropped)."""
    return {key: np.asarray(raw[key], np.float32) for key in DATASET_KEYS}


def load_ogbench(name: str, dataset_dir: str | None = None, eval_workers: int | None = None) -> Task:
    """An OGBench single-task dataset (e.g. cube-single-play-singletask-task2-v0) from local files.

    Reads <dir>/<stem>.npz and <dir>/<stem>-val.npz (see `ogbench_files`; never downloads) with ogbench's
    loader, which drops each episode's last row and computes the task's rewards (N,) and masks (N,) from the
    stored qpos (FQL's convention). Observations (N, obs_dim) and actions (N, action_dim) are float32 and
    left unclipped. `evaluate` runs real episodes (a drol.evaluation.EpisodeEvaluator): up to 50 environments
    step together, in `eval_workers` worker processes (None: drol.evaluation.default_workers(), i.e. one per
    core up to 4, 0 on a single core: in this process); they are built at the first evaluation and reused by
    later ones, and the workers stop when the Task is garbage-collected or the interpreter exits.
    """
    import functools

    import ogbench

    from drol.evaluation import EpisodeEvaluator, default_workers

    env_name, train_path, val_path = _require_ogbench_files(name, dataset_dir)
    folder = os.path.dirname(train_path)
    required_keys = OGBENCH_FILE_KEYS + (("button_states",) if env_name.startswith(OGBENCH_BUTTON_ENVS) else ())
    for path in (train_path, val_path):
        _check_ogbench_file(path, required_keys)
    try:
        _, train_raw, val_raw = ogbench.make_env_and_datasets(name, dataset_dir=folder, compact_dataset=False)
    except Exception as error:
        problem = str(error).replace("\n", " ") or type(error).__name__
        raise ValueError(f"ogbench could not load {train_path} or {val_path}: {problem}") from error
    dataset, validation = _ogbench_arrays(train_raw), _ogbench_arrays(val_raw)
    validate_dataset(dataset, what=f"OGBench dataset {train_path}")
    validate_dataset(validation, what=f"OGBench dataset {val_path}")

    make_env = functools.partial(ogbench.make_env_and_datasets, name, env_only=True)  # picklable, for the workers
    evaluate = EpisodeEvaluator(make_env, workers=default_workers() if eval_workers is None else eval_workers)
    return Task(name=name, dataset=dataset, validation=validation, evaluate=evaluate)


def check_task(name: str, dataset_dir: str | None = None) -> None:
    """Raise ValueError (one line) unless `name` is a known task whose files are present; loads no data
    (a sweep checks every task of its grid this way before it starts). Task names, in the order tried:
    modes-2d / modes-5d; npz:PATH and package.module:factory (drol.custom_tasks); a D4RL name or a Minari
    id present locally (drol.minari_tasks); an OGBench single-task name."""
    from drol import custom_tasks, minari_tasks

    if name in MODES_TASKS:
        return
    if name.startswith("modes-"):
        raise ValueError(f"unknown task {name!r}; the modes family has {', '.join(MODES_TASKS)}")
    if custom_tasks.is_npz_task(name):
        custom_tasks.check_npz(name)
        return
    if custom_tasks.is_factory_task(name):
        custom_tasks.check_factory(name)
        return
    if "-singletask-" in name and "/" not in name:
        _require_ogbench_files(name, dataset_dir)
        return
    if minari_tasks.minari_id(name) is not None:
        minari_tasks.check_minari(name)
        return
    raise ValueError(f"unknown task {name!r}; valid: {', '.join(MODES_TASKS)}, an OGBench single-task name such as "
                     f"cube-single-play-singletask-task2-v0, a D4RL name ({minari_tasks.D4RL_NAMES_TEXT}), a Minari "
                     "dataset id such as D4RL/antmaze/umaze-v1, npz:PATH, or package.module:factory")


def load_task(name: str, dataset_dir: str | None = None) -> Task:
    """Load a task by name (see check_task); raises ValueError with a one-line message for unknown names
    or bad data."""
    from drol import custom_tasks, minari_tasks

    check_task(name, dataset_dir)
    if name in MODES_TASKS:
        return modes_task(name)
    if custom_tasks.is_npz_task(name):
        return custom_tasks.load_npz(name)
    if custom_tasks.is_factory_task(name):
        return custom_tasks.load_factory(name)
    if "-singletask-" in name and "/" not in name:
        return load_ogbench(name, dataset_dir)
    return minari_tasks.load_minari(name)


def task_folder_name(name: str) -> str:
    """The run folder name of a task (<out>/<folder>/<ablation>-k<K>; config.json keeps the real name):
    the name itself when folder-safe (modes, OGBench, D4RL names); a Minari id with '/' -> '-'
    (D4RL/antmaze/umaze-v1 -> D4RL-antmaze-umaze-v1); npz:PATH -> npz-<file stem>-<hash of the absolute
    path>; package.module:factory -> py-package.module-factory. A folder holding another task's run is
    refused as a conflict (its config.json names the task), never mixed."""
    from drol import custom_tasks

    if custom_tasks.is_npz_task(name) or custom_tasks.is_factory_task(name):
        return custom_tasks.folder_name(name)
    return name.replace("/", "-")
