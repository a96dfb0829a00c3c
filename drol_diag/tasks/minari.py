"""Minari datasets as Tasks: D4RL through Minari (`D4RL_NAMES`), and any Minari dataset present locally.

Data are read from the local Minari root only (`minari_root()`); nothing is ever downloaded.
Episodes become transitions (N rows, N = total steps; Minari stores T + 1 observations per T-step
episode, so no row is dropped): observations and next_observations (N, obs_dim), actions (N, action_dim)
as stored, rewards (N,), masks (N,) = 1 - terminations, episode_ends (N,). D4RL antmaze rewards are
shifted by -1 (FQL's convention, after IQL).

Dict observations are flattened (`observation_layout`): D4RL antmaze keeps D4RL's 29 numbers,
[achieved_goal (x, y), observation (27)], and drops desired_goal, which D4RL and FQL never see.

Evaluation runs episodes in `recover_environment(eval_env=True)`. The score is on a 0-1 scale: with
ref_min_score/ref_max_score, D4RL's normalised score / 100 (`normalized_score` x 100); for D4RL antmaze
the success rate, the episode ending at the goal as in D4RL (`continuing_task=False`: Minari's antmaze
reference scores belong to a continuing task, another scale); else the mean return.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from drol_diag.tasks.base import DATASET_KEYS, VISITED, Policy, Task, validate_dataset
from drol_diag.tasks.episodes import EpisodeEvaluator, default_workers

D4RL_ANTMAZE_MAZES = ("umaze", "umaze-diverse", "medium-play", "medium-diverse", "large-play", "large-diverse")
D4RL_ADROIT_ENVS = ("pen", "door", "hammer", "relocate")
D4RL_ADROIT_KINDS = ("human", "cloned", "expert")
D4RL_NAMES: dict[str, str] = {  # D4RL dataset name -> Minari dataset id
    **{f"antmaze-{maze}-v2": f"D4RL/antmaze/{maze}-v1" for maze in D4RL_ANTMAZE_MAZES},
    **{f"{env}-{kind}-v1": f"D4RL/{env}/{kind}-v2" for env in D4RL_ADROIT_ENVS for kind in D4RL_ADROIT_KINDS},
}
D4RL_NAMES_TEXT = ("antmaze-{" + ",".join(D4RL_ANTMAZE_MAZES) + "}-v2, {" + ",".join(D4RL_ADROIT_ENVS) + "}-{"
                   + ",".join(D4RL_ADROIT_KINDS) + "}-v1")
DEFAULT_MINARI_ROOT = "~/.minari/datasets"  # minari's own default root
ANTMAZE_REWARD_SHIFT = -1.0  # FQL's D4RL antmaze rewards: r - 1 (0 at the goal, -1 elsewhere)
ANTMAZE_KEYS = ("achieved_goal", "observation")  # D4RL antmaze observation: (x, y) then the other 27 numbers
# Minari's id syntax, (namespace/)name-v<version>, with the version required (minari.dataset.minari_dataset)
MINARI_ID_RE = re.compile(r"^(?:(?P<namespace>[-_\w][-_\w/]*[-_\w]+)/)?(?P<dataset>[-_\w]+?)-v(?P<version>\d+)$")
EXTRA_INSTALLS = {"gymnasium_robotics": "pip install 'drol-diag[d4rl]' (gymnasium-robotics)"}  # module -> fix

Layout = tuple[tuple[Any, ...], ...]  # paths (dict keys / tuple indices) of the leaves, in concatenation order


def minari_root() -> str:
    """The local Minari root: $MINARI_DATASETS_PATH, else ~/.minari/datasets (not created here)."""
    return os.path.expanduser(os.environ.get("MINARI_DATASETS_PATH") or DEFAULT_MINARI_ROOT)


def minari_dataset_path(dataset_id: str) -> str | None:
    """The local folder <root>/<dataset_id> of a Minari dataset, None if absent (no data/ folder in it:
    minari's own test) or if `dataset_id` is not a Minari id."""
    if not MINARI_ID_RE.fullmatch(dataset_id):
        return None
    folder = os.path.join(minari_root(), dataset_id)
    return folder if os.path.isdir(os.path.join(folder, "data")) else None


def minari_id(name: str) -> str | None:
    """The Minari dataset id a task name names: a D4RL name's mapped id, a name with a namespace
    (`D4RL/antmaze/umaze-v1`), or a namespace-less id present locally; None otherwise."""
    if name in D4RL_NAMES:
        return D4RL_NAMES[name]
    if MINARI_ID_RE.fullmatch(name) and ("/" in name or minari_dataset_path(name)):
        return name
    return None


D4RL_MINARI_ID_RE = re.compile(r"^D4RL/(?P<env>[-\w]+)/(?P<dataset>[-\w]+?)-v\d+$")  # D4RL/antmaze/umaze-v1


def d4rl_base(task: str) -> str | None:
    """The D4RL dataset name without version that `task` trains on, for D4RL names and the Minari ids
    of D4RL datasets (D4RL/antmaze/umaze-v1 -> antmaze-umaze, D4RL/pen/human-v2 -> pen-human); else None.

    >>> d4rl_base("antmaze-large-play-v2"), d4rl_base("D4RL/door/cloned-v2"), d4rl_base("modes-2d")
    ('antmaze-large-play', 'door-cloned', None)
    """
    match = D4RL_MINARI_ID_RE.fullmatch(task)
    base = f"{match['env']}-{match['dataset']}" if match else re.sub(r"-v\d+$", "", task)
    if "/" in base:
        return None
    if base in {f"antmaze-{maze}" for maze in D4RL_ANTMAZE_MAZES} or base.split("-")[0] in D4RL_ADROIT_ENVS:
        return base
    return None


def is_d4rl_antmaze(dataset_id: str) -> bool:
    """Whether a Minari id is a D4RL antmaze dataset (reward shift, observation layout, evaluation)."""
    return dataset_id.startswith("D4RL/antmaze/")


def _not_local_message(name: str, dataset_id: str) -> str:
    named = f"{name} (Minari dataset {dataset_id})" if name != dataset_id else f"Minari dataset {dataset_id}"
    return (f"{named} is not in the local Minari root {minari_root()} ($MINARI_DATASETS_PATH, default "
            f"{DEFAULT_MINARI_ROOT}); on a machine with network run `minari download {dataset_id}` and copy the "
            f"folder it writes to {os.path.join(minari_root(), dataset_id)} (nothing is downloaded here)")


def _read_metadata(dataset_id: str, folder: str) -> dict[str, Any]:
    """The dataset's metadata.json; ValueError (one line) if unreadable."""
    path = os.path.join(folder, "data", "metadata.json")
    try:
        with open(path) as handle:
            metadata = json.load(handle)
        if not isinstance(metadata, dict):
            raise ValueError("it is not a JSON object")
    except Exception as error:
        problem = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"bad Minari dataset {dataset_id}: cannot read {path}: {problem}") from error
    return metadata


def _eval_env_spec_json(metadata: dict[str, Any]) -> str | None:
    """The JSON EnvSpec recover_environment(eval_env=True) makes: eval_env_spec, else env_spec, else None."""
    return metadata.get("eval_env_spec") or metadata.get("env_spec") or None


def _require_env_packages(dataset_id: str, spec_json: str, metadata: dict[str, Any]) -> None:
    """Raise ValueError (one line) if the package of the evaluation environment's entry point is missing."""
    try:
        spec = json.loads(spec_json)
    except json.JSONDecodeError as error:
        raise ValueError(f"bad Minari dataset {dataset_id}: its environment spec is not JSON ({error})") from error
    entry_point = spec.get("entry_point")
    if not isinstance(entry_point, str) or ":" not in entry_point:
        return  # a callable or an id gymnasium resolves itself: gymnasium.make says what is wrong
    package = entry_point.split(":")[0].split(".")[0]
    if importlib.util.find_spec(package) is not None:
        return
    requirements = [r for r in metadata.get("requirements") or [] if isinstance(r, str)
                    and re.split(r"[<>=!~ \[;]", r)[0].lower().replace("-", "_") == package.lower()]
    fix = EXTRA_INSTALLS.get(package) or f"pip install '{requirements[0] if requirements else package}'"
    raise ValueError(f"{dataset_id} is evaluated in {spec.get('id', entry_point)}, which needs the Python package "
                     f"{package} (not installed): {fix}")


def check_minari(name: str) -> str:
    """The local folder of the Minari dataset `name` names, after checking (metadata.json only) that its
    metadata reads and its evaluation environment's package is installed; ValueError (one line) otherwise."""
    dataset_id = minari_id(name)
    if dataset_id is None:
        raise ValueError(f"{name!r} is not a Minari dataset id ((namespace/)name-v<version>, e.g. "
                         f"D4RL/antmaze/umaze-v1) nor a D4RL name ({D4RL_NAMES_TEXT})")
    folder = minari_dataset_path(dataset_id)
    if folder is None:
        raise ValueError(_not_local_message(name, dataset_id))
    metadata = _read_metadata(dataset_id, folder)
    spec_json = _eval_env_spec_json(metadata)
    if spec_json is not None:
        _require_env_packages(dataset_id, spec_json, metadata)
    return folder


# --------------------------------------------------------------------------------------------
# Observation layout: how a (possibly dict) observation becomes one flat vector.


def observation_layout(space: Any, dataset_id: str = "") -> Layout:
    """Paths of the observation leaves in concatenation order: ((),) for a Box; D4RL antmaze dicts
    (achieved_goal, observation); other dicts every leaf, keys sorted, recursively; tuples in order."""
    import gymnasium

    if isinstance(space, gymnasium.spaces.Dict) and is_d4rl_antmaze(dataset_id) and set(space.spaces) == {
            *ANTMAZE_KEYS, "desired_goal"}:
        return tuple((key,) for key in ANTMAZE_KEYS)

    def leaves(sub: Any, path: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if isinstance(sub, gymnasium.spaces.Box):
            return [path]
        if isinstance(sub, gymnasium.spaces.Dict):
            return [leaf for key in sorted(sub.spaces) for leaf in leaves(sub.spaces[key], path + (key,))]
        if isinstance(sub, gymnasium.spaces.Tuple):
            return [leaf for i, part in enumerate(sub.spaces) for leaf in leaves(part, path + (i,))]
        where = "/".join(map(str, path)) or "the observation"
        raise ValueError(f"observation space {type(sub).__name__} at {where} is not supported; observations "
                         "must be Box, or Dict/Tuple of Box (flattened to one vector)")

    return tuple(leaves(space, ()))


def flatten_observations(observations: Any, layout: Layout, batched: bool) -> np.ndarray:
    """The leaves at `layout`'s paths concatenated: (n, obs_dim) from a batch, else (obs_dim,); float32."""
    parts = []
    for path in layout:
        leaf = observations
        for key in path:
            leaf = leaf[key]
        leaf = np.asarray(leaf, np.float32)
        parts.append(leaf.reshape(len(leaf), -1) if batched else leaf.reshape(-1))
    return np.concatenate(parts, axis=-1)


def make_flat_env(make: Callable[[], Any], layout: Layout) -> Any:
    """`make()`'s environment with observations flattened by `layout` into a float32 Box."""
    import gymnasium

    env = make()
    dim = flatten_observations(env.observation_space.sample(), layout, batched=False).shape[0]
    space = gymnasium.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
    return gymnasium.wrappers.TransformObservation(
        env, functools.partial(flatten_observations, layout=layout, batched=False), space)


def _recover_eval_env(data_path: str, env_kwargs: dict[str, Any]) -> Any:
    """MinariDataset(data_path).recover_environment(eval_env=True), quietly (load_minari showed its warnings)."""
    import minari

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return minari.MinariDataset(data_path).recover_environment(eval_env=True, **env_kwargs)


def make_minari_eval_env(data_path: str, layout: Layout, env_kwargs: dict[str, Any]) -> Any:
    """The flattened evaluation environment of the dataset at `data_path`; module-level, so its partial pickles."""
    return make_flat_env(functools.partial(_recover_eval_env, data_path, env_kwargs), layout)


@dataclass(frozen=True)
class EpisodeScorer:
    """Task.evaluate by real episodes in `episodes`' environments, scored as the module docstring says."""

    episodes: EpisodeEvaluator  # holds the environments (make_env must pickle: functools.partial)
    ref_min_score: float | None = None  # return of a random policy (0 on the normalised scale)
    ref_max_score: float | None = None  # return of an expert (1 on the normalised scale)
    success_score: bool = False  # True: score = success rate (D4RL antmaze)
    reward_shift: float = 0.0  # added to the environment's rewards in VISITED: the dataset's convention

    def __call__(self, policy: Policy, num_episodes: int, seed: int) -> dict:
        result = self.episodes(policy, num_episodes, seed)
        visited = result[VISITED]
        scores = {"return": result["return"], "length": result["length"],
                  VISITED: dataclasses.replace(visited, rewards=visited.rewards + self.reward_shift)}
        if self.success_score:
            scores.update(score=result["success"], success=result["success"],
                          normalized_score=100.0 * result["success"])
        elif self.ref_min_score is not None and self.ref_max_score is not None:
            normalized = (result["return"] - self.ref_min_score) / (self.ref_max_score - self.ref_min_score)
            scores.update(score=normalized, normalized_score=100.0 * normalized)
        else:
            scores.update(score=result["return"])
        return scores


def reference_scores(metadata: dict[str, Any], what: str) -> tuple[float | None, float | None]:
    """(ref_min_score, ref_max_score) from `metadata`, both or neither; ValueError if malformed."""
    low, high = metadata.get("ref_min_score"), metadata.get("ref_max_score")
    if low is None or high is None:
        return None, None
    try:
        low, high = float(np.asarray(low)), float(np.asarray(high))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what}: ref_min_score and ref_max_score must be numbers, got {low!r}, {high!r}") from error
    if not (np.isfinite(low) and np.isfinite(high) and high != low):
        raise ValueError(f"{what}: ref_min_score {low} and ref_max_score {high} must be finite and differ")
    return low, high


def check_eval_env(make_env: Callable[[], Any], obs_dim: int, action_dim: int, what: str) -> None:
    """Raise ValueError (one line) unless one evaluation environment has obs_dim and a Box of action_dim."""
    import gymnasium

    try:
        env = make_env()
    except Exception as error:
        problem = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"{what}: its evaluation environment cannot be made: {type(error).__name__}: {problem}") \
            from error
    try:
        env_obs = env.observation_space.shape[0]
        if not isinstance(env.action_space, gymnasium.spaces.Box):
            raise ValueError(f"{what}: its evaluation environment has {type(env.action_space).__name__} actions; "
                             "a Box is needed")
        env_act = int(np.prod(env.action_space.shape))
        if (env_obs, env_act) != (obs_dim, action_dim):
            raise ValueError(f"{what}: its evaluation environment has observations of {env_obs} and actions of "
                             f"{env_act} numbers, the data {obs_dim} and {action_dim}; they must match")
        if not (np.all(env.action_space.low == -1.0) and np.all(env.action_space.high == 1.0)):
            warnings.warn(f"{what}: its evaluation environment's actions range over [{env.action_space.low.min()}, "
                          f"{env.action_space.high.max()}], but DROL's actions lie in [-1, 1] (dataset actions are "
                          "clipped to it, the policy's are stepped as they are)", stacklevel=2)
    finally:
        env.close()


# --------------------------------------------------------------------------------------------
# Loading.


def episodes_to_transitions(episodes: Any, layout: Layout, total_steps: int | None = None,
                            desc: str = "episodes") -> dict[str, np.ndarray]:
    """Minari episodes (T + 1 observations, T of the rest) as transitions (module docstring), with a
    progress bar over `total_steps` on a terminal."""
    from tqdm import tqdm

    parts: dict[str, list[np.ndarray]] = {key: [] for key in (*DATASET_KEYS, "episode_ends")}
    with tqdm(total=total_steps, desc=desc, unit="step", unit_scale=True, disable=None, leave=False) as bar:
        for episode in episodes:
            steps = len(episode.rewards)
            if steps == 0:
                continue
            observations = flatten_observations(episode.observations, layout, batched=True)  # (T + 1, obs_dim)
            if len(observations) != steps + 1:
                raise ValueError(f"episode {episode.id} has {len(observations)} observations for {steps} steps; "
                                 "Minari episodes hold one more observation than steps")
            terminations = np.asarray(episode.terminations, bool).reshape(steps)
            ends = terminations | np.asarray(episode.truncations, bool).reshape(steps)
            ends[-1] = True
            parts["observations"].append(observations[:-1])
            parts["next_observations"].append(observations[1:])
            parts["actions"].append(np.asarray(episode.actions, np.float32).reshape(steps, -1))
            parts["rewards"].append(np.asarray(episode.rewards, np.float32).reshape(steps))
            parts["masks"].append(1.0 - terminations.astype(np.float32))
            parts["episode_ends"].append(ends.astype(np.float32))
            bar.update(steps)
    if not parts["actions"]:
        raise ValueError("no transitions: every episode is empty")
    return {key: np.concatenate(value).astype(np.float32) for key, value in parts.items()}


def load_minari(name: str) -> Task:
    """A Minari dataset (an id, or a D4RL name mapped to one) as a Task; ValueError (one line) otherwise."""
    import gymnasium
    import minari

    folder = check_minari(name)
    dataset_id = minari_id(name)
    data_path = os.path.join(folder, "data")
    try:
        dataset = minari.MinariDataset(data_path)  # reads the local folder only (never load_dataset/download)
    except Exception as error:
        problem = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"bad Minari dataset {dataset_id} in {folder}: {problem}") from error
    if not isinstance(dataset.action_space, gymnasium.spaces.Box):
        raise ValueError(f"{dataset_id} has {type(dataset.action_space).__name__} actions; DROL needs continuous "
                         "(Box) actions")
    layout = observation_layout(dataset.observation_space, dataset_id)
    try:
        arrays = episodes_to_transitions(dataset.iterate_episodes(), layout, dataset.total_steps,
                                         desc=f"reading {dataset_id}")
    except ValueError as error:
        raise ValueError(f"bad Minari dataset {dataset_id}: {error}") from error
    except Exception as error:  # h5py/arrow errors of a damaged file
        problem = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"bad Minari dataset {dataset_id} in {folder}: {type(error).__name__}: {problem}") from error
    if is_d4rl_antmaze(dataset_id):
        arrays["rewards"] = arrays["rewards"] + np.float32(ANTMAZE_REWARD_SHIFT)
    validate_dataset(arrays, what=f"Minari dataset {dataset_id}")

    metadata = dataset.storage.metadata
    evaluate = None
    if _eval_env_spec_json(metadata) is not None:
        antmaze = is_d4rl_antmaze(dataset_id) and "continuing_task" in json.loads(
            _eval_env_spec_json(metadata)).get("kwargs", {})
        env_kwargs = {"continuing_task": False} if antmaze else {}
        make_env = functools.partial(make_minari_eval_env, data_path, layout, env_kwargs)
        check_eval_env(functools.partial(make_flat_env, functools.partial(
            dataset.recover_environment, eval_env=True, **env_kwargs), layout),  # shows minari's warnings once
            arrays["observations"].shape[1], arrays["actions"].shape[1], f"Minari dataset {dataset_id}")
        low, high = reference_scores(metadata, f"Minari dataset {dataset_id}")
        evaluator = EpisodeEvaluator(make_env, workers=default_workers())
        evaluate = EpisodeScorer(evaluator, low, high, success_score=antmaze,
                                 reward_shift=ANTMAZE_REWARD_SHIFT if is_d4rl_antmaze(dataset_id) else 0.0)
    return Task(name=name, dataset=arrays, validation=None, evaluate=evaluate)
