"""Task names: one classification of a name into its source, used by presets, checks, loading and
run-folder names alike.

Sources, tried in this order (the first that claims a name owns it):

| kind        | names                                                       | module                       |
|-------------|-------------------------------------------------------------|------------------------------|
| `synthetic` | modes-2d/5d, arc- and cliff-2d/5d/8d/21d (one step),        | drol_diag.tasks.{modes, arc, |
|             | corridor-2d/8d (multi-step); any other `modes-`, `arc-`,    | cliff} (shared: onestep),    |
|             | `cliff-` or `corridor-` name is refused                     | drol_diag.tasks.corridor     |
| `custom`    | npz:PATH, package.module:factory                            | drol_diag.tasks.custom       |
| `d4rl`      | D4RL names (antmaze-*-v2, pen-human-v1) and their Minari ids | drol_diag.tasks.minari       |
| `ogbench`   | OGBench single-task names (<env>-<type>-singletask[-taskN]-v0) | drol_diag.tasks.ogbench   |
| `minari`    | any other Minari dataset id (a '/' in it, or present locally) | drol_diag.tasks.minari     |

`task_kind` never reads a file (presets and profiles use it); `check_task` checks the files are
there without loading data (a sweep checks its whole grid so before it starts); `load_task` loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drol_diag.tasks import arc, cliff, corridor, custom, minari, modes, ogbench
from drol_diag.tasks.base import Task

KINDS = ("synthetic", "custom", "d4rl", "ogbench", "minari")


@dataclass(frozen=True)
class SyntheticFamily:
    """One family of embedded tasks: its named specs, how to build a task and its reference levels."""

    specs: dict[str, Any]  # task name -> frozen Spec dataclass
    build: Callable[[str], Task]  # name -> Task
    reference_levels: Callable[[Any], dict[str, float]]  # spec -> {level name: score}


SYNTHETIC: dict[str, SyntheticFamily] = {  # name prefix (before the first '-') -> family
    "modes": SyntheticFamily(modes.MODES_TASKS, modes.modes_task, modes.reference_levels),
    "arc": SyntheticFamily(arc.ARC_TASKS, arc.arc_task, arc.reference_levels),
    "cliff": SyntheticFamily(cliff.CLIFF_TASKS, cliff.cliff_task, cliff.reference_levels),
    "corridor": SyntheticFamily(corridor.CORRIDOR_TASKS, corridor.corridor_task, corridor.reference_levels),
}
SYNTHETIC_TASKS: tuple[str, ...] = tuple(name for family in SYNTHETIC.values() for name in family.specs)


def synthetic_family(name: str) -> SyntheticFamily | None:
    """The embedded family a name's prefix claims (`arc-2d` -> arc), or None."""
    return SYNTHETIC.get(name.split("-", 1)[0]) if "-" in name else None


def synthetic_spec(name: str) -> Any | None:
    """The Spec of an embedded task (ModesSpec, ArcSpec, CliffSpec, CorridorSpec), or None for any other name."""
    family = synthetic_family(name)
    return family.specs.get(name) if family else None


def synthetic_reference_levels(name: str) -> dict[str, float]:
    """The reference levels of an embedded task without building its data ({} for other names)."""
    spec = synthetic_spec(name)
    return synthetic_family(name).reference_levels(spec) if spec is not None else {}


@dataclass(frozen=True)
class TaskSource:
    """How one kind of task name is checked, loaded and given a run folder."""

    kind: str  # one of KINDS
    check: Callable[[str, str | None], None]  # (name, dataset_dir) -> None; ValueError (one line) if unusable
    load: Callable[[str, str | None], Task]  # (name, dataset_dir) -> Task
    folder: Callable[[str], str] = lambda name: name.replace("/", "-")  # run folder name (config.json keeps the name)


def _check_synthetic(name: str, dataset_dir: str | None) -> None:
    if synthetic_spec(name) is None:
        prefix = name.split("-", 1)[0]
        raise ValueError(f"unknown task {name!r}; the {prefix} family has {', '.join(SYNTHETIC[prefix].specs)} "
                         f"(embedded tasks: {', '.join(SYNTHETIC_TASKS)})")


SOURCES: dict[str, TaskSource] = {
    "synthetic": TaskSource("synthetic", _check_synthetic, lambda name, _: synthetic_family(name).build(name)),
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
    ('synthetic', 'custom', 'd4rl', 'minari')
    """
    if synthetic_family(name) is not None:
        return "synthetic"
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
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(SYNTHETIC_TASKS)}, an OGBench single-task name "
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
    """The run folder name of a task (<out>/<folder>/<ablation>-k<K>): '/' -> '-', custom.folder_name for custom
    tasks; config.json keeps the real name."""
    kind = task_kind(name)
    return SOURCES[kind].folder(name) if kind else name.replace("/", "-")
