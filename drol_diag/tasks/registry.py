"""Task names: one classification of a name into its source, used by presets, checks, loading and
run-folder names alike.

Sources, tried in this order (the first that claims a name owns it):

| kind      | names                                                             | module                   |
|-----------|-------------------------------------------------------------------|--------------------------|
| `modes`   | modes-2d, modes-5d (any `modes-` name: others are refused)        | drol_diag.tasks.modes    |
| `custom`  | npz:PATH, package.module:factory                                  | drol_diag.tasks.custom   |
| `d4rl`    | D4RL names (antmaze-*-v2, pen-human-v1, ...) and their Minari ids | drol_diag.tasks.minari   |
| `ogbench` | OGBench single-task names (<env>-<type>-singletask[-taskN]-v0)     | drol_diag.tasks.ogbench  |
| `minari`  | any other Minari dataset id (a '/' in it, or present locally)     | drol_diag.tasks.minari   |

`task_kind` never reads a file (presets and profiles use it); `check_task` checks the files are
there without loading data (a sweep checks its whole grid so before it starts); `load_task` loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from drol_diag.tasks import custom, minari, modes, ogbench
from drol_diag.tasks.base import Task

KINDS = ("modes", "custom", "d4rl", "ogbench", "minari")


@dataclass(frozen=True)
class TaskSource:
    """How one kind of task name is checked, loaded and given a run folder."""

    kind: str  # one of KINDS
    check: Callable[[str, str | None], None]  # (name, dataset_dir) -> None; ValueError (one line) if unusable
    load: Callable[[str, str | None], Task]  # (name, dataset_dir) -> Task
    folder: Callable[[str], str] = lambda name: name.replace("/", "-")  # run folder name (config.json keeps the name)


def _check_modes(name: str, dataset_dir: str | None) -> None:
    if name not in modes.MODES_TASKS:
        raise ValueError(f"unknown task {name!r}; the modes family has {', '.join(modes.MODES_TASKS)}")


SOURCES: dict[str, TaskSource] = {
    "modes": TaskSource("modes", _check_modes, lambda name, _: modes.modes_task(name)),
    "custom": TaskSource("custom", lambda name, _: custom.check_custom(name), lambda name, _: custom.load_custom(name),
                         custom.folder_name),
    "d4rl": TaskSource("d4rl", lambda name, _: minari.check_minari(name), lambda name, _: minari.load_minari(name)),
    "ogbench": TaskSource("ogbench", lambda name, folder: ogbench.check_ogbench(name, folder), ogbench.load_ogbench),
    "minari": TaskSource("minari", lambda name, _: minari.check_minari(name), lambda name, _: minari.load_minari(name)),
}


def task_kind(name: str) -> str | None:
    """The kind (KINDS) of a task name, or None for a name no source claims. Reads no file except
    Minari's root for a namespace-less id.

    >>> task_kind("modes-2d"), task_kind("npz:x.npz"), task_kind("pen-human-v1"), task_kind("mujoco/hopper/medium-v0")
    ('modes', 'custom', 'd4rl', 'minari')
    """
    if name.startswith("modes-"):
        return "modes"
    if custom.is_npz_task(name) or custom.is_factory_task(name):
        return "custom"
    if minari.d4rl_base(name) is not None:
        return "d4rl"
    if ogbench.is_ogbench_name(name):
        return "ogbench"
    if minari.minari_id(name) is not None:
        return "minari"
    return None


def task_source(name: str) -> TaskSource:
    """The source that owns `name`; ValueError (one line, listing the valid forms) for an unknown name."""
    kind = task_kind(name)
    if kind is None:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(modes.MODES_TASKS)}, an OGBench single-task name "
                         f"such as cube-single-play-singletask-task2-v0, a D4RL name ({minari.D4RL_NAMES_TEXT}), a "
                         "Minari dataset id such as D4RL/antmaze/umaze-v1, npz:PATH, or package.module:factory")
    return SOURCES[kind]


def check_task(name: str, dataset_dir: str | None = None) -> None:
    """Raise ValueError (one line) unless `name` is a known task whose files are present; loads no data."""
    task_source(name).check(name, dataset_dir)


def load_task(name: str, dataset_dir: str | None = None) -> Task:
    """Load a task by name (see check_task); ValueError with a one-line message for unknown names or bad data."""
    source = task_source(name)
    source.check(name, dataset_dir)
    return source.load(name, dataset_dir)


def task_folder_name(name: str) -> str:
    """The run folder name of a task (<out>/<folder>/<ablation>-k<K>; config.json keeps the real name):
    the name itself when folder-safe (modes, OGBench, D4RL names); a Minari id with '/' -> '-'
    (D4RL/antmaze/umaze-v1 -> D4RL-antmaze-umaze-v1); npz:PATH -> npz-<file stem>-<hash of the absolute
    path>; package.module:factory -> py-package.module-factory. A folder holding another task's run is
    refused as a conflict (its config.json names the task), never mixed."""
    kind = task_kind(name)
    return SOURCES[kind].folder(name) if kind else name.replace("/", "-")
