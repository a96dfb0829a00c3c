"""OGBench single-task datasets, read from local files only (never downloaded)."""

from __future__ import annotations

import os

import numpy as np

from drol_diag.tasks.base import DATASET_KEYS, Task, validate_dataset
from drol_diag.tasks.custom import NO_PICKLES, not_numpy_file
from drol_diag.tasks.episodes import EpisodeEvaluator, default_workers

DEFAULT_OGBENCH_DIR = "~/.ogbench/data"


def ogbench_dataset_dir(dataset_dir: str | None = None) -> str:
    """The dataset folder: the argument, else $OGBENCH_DATA_DIR, else ~/.ogbench/data."""
    return os.path.expanduser(dataset_dir or os.environ.get("OGBENCH_DATA_DIR") or DEFAULT_OGBENCH_DIR)


OGBENCH_URL = "https://rail.eecs.berkeley.edu/datasets/ogbench/"
OGBENCH_FILE_KEYS = ("observations", "actions", "terminals", "qpos", "qvel")  # every official file has these
OGBENCH_BUTTON_ENVS = ("scene", "puzzle")  # their files also need button_states (for the rewards)


def _ogbench_names(name: str) -> tuple[str, str]:
    """(environment name, dataset file stem) by ogbench's rule: cube-single-play-singletask-task2-v0 ->
    (cube-single-singletask-task2-v0, cube-single-play-v0)."""
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


def is_ogbench_name(name: str) -> bool:
    """Whether `name` is of the single-task form this module reads (checked further by check_ogbench)."""
    return "-singletask-" in name and "/" not in name


def check_ogbench(name: str, dataset_dir: str | None = None) -> None:
    """Raise ValueError (one line) unless the environment exists and both dataset files are present."""
    _require_ogbench_files(name, dataset_dir)


def ogbench_files(name: str, dataset_dir: str | None = None) -> tuple[str, str]:
    """Paths (train, validation) of the files a single-task name reads, e.g. for
    cube-single-play-singletask-task2-v0: (<dir>/cube-single-play-v0.npz, <dir>/cube-single-play-v0-val.npz)."""
    _, stem = _ogbench_names(name)
    folder = ogbench_dataset_dir(dataset_dir)
    return os.path.join(folder, f"{stem}.npz"), os.path.join(folder, f"{stem}-val.npz")


def _require_ogbench_files(name: str, dataset_dir: str | None) -> tuple[str, str, str]:
    """(environment name, train path, validation path), after checking the environment exists and both files
    are present (ogbench's loader would try to download a missing one)."""
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
    """Raise ValueError (one line) unless `path` is an npz archive with `required_keys` and terminals[-1] == 1."""
    try:
        not_numpy = not_numpy_file(path)
        if not_numpy:
            raise ValueError(f"it is {not_numpy}, not an npz archive")
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
        problem = NO_PICKLES if "pickle" in problem.lower() else problem  # (never numpy's advice to unpickle)
        raise ValueError(f"bad OGBench dataset file {path}: {problem}") from error


def _ogbench_arrays(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The Task arrays (float32, N rows) from ogbench's loader output (episode ends already dropped)."""
    return {key: np.asarray(raw[key], np.float32) for key in DATASET_KEYS}


def load_ogbench(name: str, dataset_dir: str | None = None, eval_workers: int | None = None) -> Task:
    """An OGBench single-task dataset from the local files `ogbench_files` names (never downloaded).

    ogbench's loader drops each episode's last row and computes the task's rewards (N,) and masks (N,) from
    the stored qpos (FQL's convention); observations (N, obs_dim) and actions (N, action_dim) are float32,
    unclipped. `evaluate` is an EpisodeEvaluator in `eval_workers` processes (None: default_workers()).
    """
    import functools

    import ogbench

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
