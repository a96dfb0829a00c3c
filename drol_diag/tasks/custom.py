"""Your own data and tasks: `--task npz:PATH` and `--task package.module:factory` (docs/tasks-and-truth.md).

npz:PATH: arrays with N rows in episode order: observations (N, obs_dim), actions (N, action_dim),
rewards (N,), terminals (N,) 0/1; optional timeouts (N,) 0/1, next_observations (N, obs_dim), masks
(N,) (default 1 - terminals), env_id (0-d string: evaluate in gymnasium.make(env_id), dict observations
flattened with keys sorted), ref_min_score and ref_max_score (0-d floats: normalise the score to 0-1).
An episode ends on a row with terminals or timeouts 1, and on the last row. Without next_observations a
row's next observation is the next row's; a row that ends its episode is kept only if its mask is 0 (as
D4RL's `qlearning_dataset` keeps terminals and drops timeouts). The Task's arrays are float32, with
episode_ends (N,) beside the five training keys.

package.module:factory: factory() returns a Task (name replaced, arrays made float32, truth kept), a dict
of arrays (Task or npz layout), a dict with "dataset" and optional "validation", "evaluate" and the
TRUTH_FIELDS functions, or a (dataset, evaluate) pair. evaluate(policy) -> number or {"score": ...}, or
the Task interface evaluate(policy, num_episodes, seed).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from drol_diag.tasks.base import DATASET_KEYS, TRUTH_FIELDS, Evaluator, Policy, Task, validate_dataset
from drol_diag.tasks.episodes import EpisodeEvaluator, default_workers
from drol_diag.tasks.minari import EpisodeScorer, check_eval_env, make_flat_env, observation_layout, reference_scores

NPZ_PREFIX = "npz:"
NPZ_REQUIRED = ("observations", "actions", "rewards", "terminals")
NPZ_OPTIONAL = ("timeouts", "next_observations", "masks", "env_id", "ref_min_score", "ref_max_score")
FACTORY_RE = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attr>[A-Za-z_]\w*)$")
FACTORY_FORMS = ("a drol_diag.tasks.Task, a dict of arrays, a dict with 'dataset' (optional 'validation', "
                 "'evaluate', 'true_value', 'behavior_log_density', 'mode_centers'), or a (dataset, evaluate) pair")
FOLDER_HASH_CHARS = 8  # hex digits of the path hash in an npz task's folder name


def is_npz_task(name: str) -> bool:
    return name.startswith(NPZ_PREFIX)


def is_factory_task(name: str) -> bool:
    return bool(FACTORY_RE.fullmatch(name))


def folder_name(name: str) -> str:
    """Run folder name: npz:data/my.npz -> npz-my-<path hash>; pkg.mod:make -> py-pkg.mod-make."""
    if is_npz_task(name):
        path = os.path.abspath(os.path.expanduser(name[len(NPZ_PREFIX):]))
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.splitext(os.path.basename(path))[0]) or "data"
        return f"npz-{stem}-{hashlib.sha256(path.encode()).hexdigest()[:FOLDER_HASH_CHARS]}"
    match = FACTORY_RE.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is neither npz:PATH nor package.module:factory")
    return f"py-{match['module']}-{match['attr']}"


# --------------------------------------------------------------------------------------------
# Arrays in the npz layout -> Task arrays.


def _flag(array: np.ndarray, key: str, n: int, what: str) -> np.ndarray:
    """A 0/1 column (n,) as bool; ValueError unless it has n rows of 0/1 values."""
    array = np.asarray(array)
    if array.shape != (n,):
        raise ValueError(f"{what}: {key} has shape {array.shape}; expected ({n},), one 0/1 per row")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or not np.isin(array, (0, 1)).all():
        raise ValueError(f"{what}: {key} must hold only 0 and 1")
    return array.astype(bool)


def transitions_from_layout(arrays: Any, what: str) -> dict[str, np.ndarray]:
    """Task arrays (float32) from a dict in the npz or the Task layout; ValueError (one line) if malformed."""
    if not isinstance(arrays, dict):
        raise ValueError(f"{what} is a {type(arrays).__name__}, not a dict of arrays")
    for key in sorted(set(arrays) & {*DATASET_KEYS, *NPZ_REQUIRED, "timeouts"}):
        value = np.asarray(arrays[key])
        if value.ndim == 0 or not (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
            raise ValueError(f"{what}: {key} is not a numeric array with one row per transition (dtype {value.dtype}, "
                             f"shape {value.shape})")
    if all(key in arrays for key in DATASET_KEYS):
        dataset = {key: np.asarray(arrays[key]) for key in DATASET_KEYS}
        validate_dataset(dataset, what=what)
        return {key: value.astype(np.float32) for key, value in dataset.items()}
    missing = [key for key in NPZ_REQUIRED if key not in arrays]
    if missing:
        raise ValueError(f"{what} lacks {', '.join(missing)} (has {', '.join(sorted(arrays)) or 'nothing'}); it needs "
                         f"{', '.join(NPZ_REQUIRED)} (optional: {', '.join(NPZ_OPTIONAL)})")
    n = len(np.asarray(arrays["actions"]))
    for key in ("observations", "rewards", "terminals", "timeouts", "next_observations", "masks"):
        if key in arrays and len(np.asarray(arrays[key])) != n:
            raise ValueError(f"{what}: {key} has {len(np.asarray(arrays[key]))} rows but actions has {n}; "
                             "all arrays need the same rows")
    terminals = _flag(arrays["terminals"], "terminals", n, what)
    timeouts = _flag(arrays["timeouts"], "timeouts", n, what) if "timeouts" in arrays else np.zeros(n, bool)
    masks = np.asarray(arrays["masks"]) if "masks" in arrays else 1.0 - terminals
    observations = np.asarray(arrays["observations"])
    ends = terminals | timeouts
    if n:
        ends[-1] = True
    if "next_observations" in arrays:
        next_observations, keep = np.asarray(arrays["next_observations"]), np.ones(n, bool)
    else:
        following = np.concatenate([observations[1:], observations[-1:]]) if n else observations
        next_observations = np.where(ends.reshape((n,) + (1,) * (observations.ndim - 1)), observations, following)
        keep = ~ends | (np.asarray(masks) == 0)
    dataset = {"observations": observations[keep], "actions": np.asarray(arrays["actions"])[keep],
               "rewards": np.asarray(arrays["rewards"])[keep], "masks": np.asarray(masks)[keep],
               "next_observations": next_observations[keep]}
    validate_dataset(dataset, what=what)
    return {**{key: value.astype(np.float32) for key, value in dataset.items()},
            "episode_ends": ends[keep].astype(np.float32)}


# --------------------------------------------------------------------------------------------
# npz:PATH


def npz_path(name: str) -> str:
    """The file an npz:PATH task names (~ expanded, relative to the current directory)."""
    path = name[len(NPZ_PREFIX):]
    if not path:
        raise ValueError("npz: needs a file, e.g. --task npz:data/my_data.npz")
    return os.path.expanduser(path)


ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # an npz is a zip archive (a member, or an empty archive)
NPY_SIGNATURE = b"\x93NUMPY"  # a single .npy array
NO_PICKLES = ("holds pickled Python objects, which drol-diag never loads: unpickling can run code; "
              "save numeric arrays with numpy.savez")


def load_error_text(error: Exception) -> str:
    """numpy's or zipfile's error as one line, without numpy's advice to load pickles (never followed here)."""
    problem = " ".join(str(error).split()) or type(error).__name__
    return NO_PICKLES if "pickle" in problem.lower() else f"{type(error).__name__}: {problem}"


def not_numpy_file(path: str) -> str | None:
    """'a text file', 'an empty file' or 'some other binary file' when the first bytes are neither an npz's nor
    a .npy's (np.load would try to unpickle it); None for a file numpy can try."""
    with open(path, "rb") as f:
        head = f.read(len(NPY_SIGNATURE))
    if head.startswith(ZIP_SIGNATURES) or head == NPY_SIGNATURE:
        return None
    return "an empty file" if not head else "a text file" if head.isascii() else "some other binary file"


def _open_npz(path: str) -> Any:
    """np.load of an npz archive of named arrays, no pickles; ValueError (one line) otherwise."""
    if not os.path.isfile(path):
        raise ValueError(f"npz task file {path} does not exist")
    not_numpy = not_numpy_file(path)
    if not_numpy:
        raise ValueError(f"bad npz task file {path}: not a readable npz archive ({not_numpy}, not a zip archive); "
                         "save the arrays with numpy.savez")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:  # truncated, corrupt, a pickled array, ...
        raise ValueError(f"bad npz task file {path}: not a readable npz archive ({load_error_text(error)})") \
            from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"bad npz task file {path}: it holds a single array, not an npz archive of named arrays "
                         "(save with numpy.savez)")
    return archive


def check_npz(name: str) -> None:
    """Raise ValueError (one line) unless the file is an npz archive with the required keys (reads its index)."""
    path = npz_path(name)
    with _open_npz(path) as archive:
        missing = [key for key in NPZ_REQUIRED if key not in archive.files]
        if missing:
            raise ValueError(f"npz task file {path} lacks {', '.join(missing)} (has "
                             f"{', '.join(archive.files) or 'nothing'}); it needs {', '.join(NPZ_REQUIRED)} "
                             f"(optional: {', '.join(NPZ_OPTIONAL)})")


def _scalar_text(archive: Any, key: str, path: str) -> str:
    value = archive[key]
    if value.ndim != 0 or value.dtype.kind not in "US":
        raise ValueError(f"npz task file {path}: {key} must be a 0-d string array (np.array('Hopper-v5')), got "
                         f"dtype {value.dtype} shape {value.shape}")
    return str(value.item().decode() if value.dtype.kind == "S" else value.item())


def make_flat_gym_env(env_id: str, layout: tuple) -> Any:
    """gymnasium.make(env_id) with observations flattened by `layout`; module-level, so its partial pickles."""
    import gymnasium

    return make_flat_env(functools.partial(gymnasium.make, env_id), layout)


def _env_evaluator(env_id: str, low: float | None, high: float | None, obs_dim: int, action_dim: int,
                   what: str) -> Evaluator:
    """An EpisodeScorer in gymnasium.make(env_id), after checking the environment matches the data."""
    import gymnasium

    try:
        space = gymnasium.make(env_id).observation_space
    except Exception as error:
        problem = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"{what}: gymnasium cannot make env_id {env_id!r}: {type(error).__name__}: {problem}") \
            from error
    make_env = functools.partial(make_flat_gym_env, env_id, observation_layout(space))
    check_eval_env(make_env, obs_dim, action_dim, what)
    return EpisodeScorer(EpisodeEvaluator(make_env, workers=default_workers()), low, high)


def load_npz(name: str) -> Task:
    """An npz:PATH task (module docstring); ValueError (one line) for a bad file or bad arrays."""
    path = npz_path(name)
    check_npz(name)
    what = f"npz task file {path}"
    try:
        with _open_npz(path) as archive:
            raw = {key: archive[key] for key in archive.files}
        garbled = [key for key, value in raw.items() if not isinstance(value, np.ndarray)]
        if garbled:
            raise ValueError(f"bad npz task file {path}: {', '.join(garbled)} not stored as numpy arrays "
                             "(save with numpy.savez)")
    except ValueError as error:
        if str(error).startswith(("bad npz", "npz task")):
            raise
        raise ValueError(f"bad npz task file {path}: {load_error_text(error)}") from error
    except Exception as error:  # a member truncated or corrupt: zipfile/zlib/numpy errors while reading
        raise ValueError(f"bad npz task file {path}: {load_error_text(error)}") from error
    scalars = ("env_id", "ref_min_score", "ref_max_score")
    arrays = {key: value for key, value in raw.items() if key not in scalars}
    env_id = _scalar_text(raw, "env_id", path) if "env_id" in raw else None
    refs = {key: raw[key] for key in scalars[1:] if key in raw}
    dataset = transitions_from_layout(arrays, what)
    evaluate = None
    if env_id is not None:
        low, high = reference_scores(refs, what)
        evaluate = _env_evaluator(env_id, low, high, dataset["observations"].shape[1],
                                  dataset["actions"].shape[1], what)
    return Task(name=name, dataset=dataset, validation=None, evaluate=evaluate)


# --------------------------------------------------------------------------------------------
# package.module:factory


def _import_factory(name: str) -> Callable[[], Any]:
    """The callable package.module:factory names (sys.path plus the current directory); ValueError (one line)."""
    match = FACTORY_RE.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is not package.module:factory")
    module_name, attr = match["module"], match["attr"]
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise ValueError(f"task {name}: module {module_name} not found (looked in sys.path and the current "
                             f"directory {here})") from error
        raise ValueError(f"task {name}: importing {module_name} failed: {error}") from error
    except Exception as error:
        problem = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"task {name}: importing {module_name} raised {type(error).__name__}: {problem}") from error
    if not hasattr(module, attr):
        raise ValueError(f"task {name}: module {module_name} ({getattr(module, '__file__', '?')}) has no attribute "
                         f"{attr!r}")
    factory = getattr(module, attr)
    if not callable(factory):
        raise ValueError(f"task {name}: {module_name}.{attr} is a {type(factory).__name__}, not a function")
    return factory


def _positional_arity(function: Callable) -> int | None:
    """How many positional arguments `function` takes (None: any number, or unknown)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)


@dataclasses.dataclass(frozen=True)
class AdaptedEvaluator:
    """The Task interface around a user's evaluate(policy) -> number or dict, or evaluate(policy, episodes, seed)."""

    function: Callable
    takes_episodes: bool  # True: the Task interface (policy, num_episodes, seed)
    task_name: str

    def __call__(self, policy: Policy, num_episodes: int, seed: int) -> dict:
        result = self.function(policy, num_episodes, seed) if self.takes_episodes else self.function(policy)
        if isinstance(result, dict) and "score" in result:
            return result
        if isinstance(result, (int, float, np.number)) or (isinstance(result, np.ndarray) and result.size == 1):
            return {"score": float(result)}
        raise ValueError(f"task {self.task_name}: evaluate returned {type(result).__name__}; expected a number or a "
                         "dict with 'score'")


def adapt_evaluate(evaluate: Any, task_name: str) -> Evaluator | None:
    """The Task-interface evaluator for a user's evaluate (None stays None); ValueError if not callable."""
    if evaluate is None:
        return None
    if not callable(evaluate):
        raise ValueError(f"task {task_name}: evaluate is a {type(evaluate).__name__}, not a function")
    arity = _positional_arity(evaluate)
    return AdaptedEvaluator(evaluate, takes_episodes=arity is None or arity >= 3, task_name=task_name)


def task_from_factory_result(result: Any, name: str) -> Task:
    """A Task from whatever the factory returned (module docstring); ValueError (one line) otherwise."""
    what = f"task {name}"
    if isinstance(result, Task):
        as_float32 = lambda arrays: {key: np.asarray(value, np.float32) if key in DATASET_KEYS else value
                                     for key, value in arrays.items()}
        validate_dataset(result.dataset, what=f"{what}: dataset")
        if result.validation is not None:
            validate_dataset(result.validation, what=f"{what}: validation")
        return dataclasses.replace(result, name=name, dataset=as_float32(result.dataset),
                                   validation=None if result.validation is None else as_float32(result.validation))
    evaluate, validation, truth = None, None, {}
    if isinstance(result, tuple) and len(result) == 2:
        dataset, evaluate = result
    elif isinstance(result, dict) and "dataset" in result:
        unknown = sorted(set(result) - {"dataset", "validation", "evaluate", *TRUTH_FIELDS})
        if unknown:
            raise ValueError(f"{what}: the factory's dict has unknown keys {', '.join(unknown)}; with 'dataset' it "
                             f"may hold 'validation', 'evaluate', {', '.join(repr(k) for k in TRUTH_FIELDS)}")
        dataset, validation, evaluate = result["dataset"], result.get("validation"), result.get("evaluate")
        truth = {key: result[key] for key in TRUTH_FIELDS if result.get(key) is not None}
        for key, function in truth.items():
            if not callable(function):
                raise ValueError(f"{what}: {key} is a {type(function).__name__}, not a function")
    elif isinstance(result, dict):
        dataset = result
    else:
        raise ValueError(f"{what}: the factory returned {type(result).__name__}; expected {FACTORY_FORMS}")
    return Task(name=name, dataset=transitions_from_layout(dataset, f"{what}: dataset"),
                validation=None if validation is None else transitions_from_layout(validation, f"{what}: validation"),
                evaluate=adapt_evaluate(evaluate, name), **truth)


def load_factory(name: str) -> Task:
    """A package.module:factory task: import, call factory(), adapt what it returns; ValueError (one line)."""
    factory = _import_factory(name)
    try:
        result = factory()
    except Exception as error:
        problem = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"task {name}: the factory raised {type(error).__name__}: {problem}") from error
    return task_from_factory_result(result, name)


def check_custom(name: str) -> None:
    """Raise ValueError (one line) unless an npz task's file or a factory task's callable is there."""
    check_npz(name) if is_npz_task(name) else _import_factory(name)


def load_custom(name: str) -> Task:
    """An npz:PATH or package.module:factory task."""
    return load_npz(name) if is_npz_task(name) else load_factory(name)
