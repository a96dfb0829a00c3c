"""The sweep grid: what the command line or a sweep file asks for (docs/options.md), expanded into groups.

A `Group` is one run folder `<out>/<task>/<ablation>-k<K>`: every seed of one (task, ablation, K), trained
together (vmapped) by one `drol-diag run`; a hyper-parameter grid (--grid, or the sweep file's [grid] table)
runs each at every combination of the settings its ablation accepts, in `<ablation>-k<K>-bc_coef=0.3-...`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from drol.config import LearnerConfig, learner_config_class
from drol.variants import VARIANTS, variant
from drol_diag.runfolder import store
from drol_diag.settings import RunConfig, option_applies, resolve
from drol_diag.settings.options import OPTIONS, Option, read_grid, read_value, resolve_keywords
from drol_diag.settings.parsing import split_items
from drol_diag.settings.settings_file import read_toml

SWEEP_FILE = "sweep.toml"  # the grid a sweep ran, written into its results folder
FQL = "fql"  # the one ablation without K: it runs once per task, in folder fql-k1


def _spec_field(option: Option) -> tuple[str, Any, Any]:
    """The SweepSpec field of an option: a grid axis (a tuple of values) or one value for every group."""
    if option.grid:
        default = () if option.default is None else (option.default,)
        return option.grid, tuple, dataclasses.field(default=default)
    return option.name, Any, dataclasses.field(default=option.default)


# A sweep: the grid (tasks x ablations x K; empty k: each task's preset K), every other run option (None: the
# default) and `grid`, the hyper-parameter grid ((setting, (value, ...)), ...).
SweepSpec = dataclasses.make_dataclass("SweepSpec", [_spec_field(option) for option in OPTIONS.values()
                                                     if option.sweep]
                                       + [("grid", tuple, dataclasses.field(default=()))], frozen=True)
SweepSpec.__module__ = __name__
SPEC_OPTIONS: dict[str, Option] = {option.grid or option.name: option for option in OPTIONS.values() if option.sweep}
GRID = "grid"  # the sweep file's table (and the sweep's repeatable --grid KEY=V1,V2,...)


@dataclass(frozen=True)
class Group:
    """One run folder's worth of work: every seed of one (task, ablation, K) in one program."""

    task: str
    ablation: str
    k: int | None  # None: the task's preset K; always None for fql (no candidates; folder fql-k1)
    seeds: tuple[int, ...]
    settings: tuple[tuple[str, Any], ...] = ()  # its point of the hyper-parameter grid: ((setting, value), ...)


def spec_from_values(file_values: dict[str, Any], option_values: dict[str, Any]) -> SweepSpec:
    """The sweep from a sweep file's values and the command line's (None: not given; these win, --grid axes too).
    Keys are SweepSpec fields (dashes or underscores) and "grid". Raises ValueError (one line) for bad values."""
    file_values = dict(file_values)
    grid = read_grid_axes(file_values.pop(GRID, None), "the sweep file's [grid]")
    grid.update(read_grid_axes(option_values.get(GRID), "--grid"))
    given = {**file_values, **{key: value for key, value in option_values.items()
                               if value is not None and key != GRID}}
    values: dict[str, Any] = {}
    for key, value in given.items():
        field = key.replace("-", "_")
        if field not in SPEC_OPTIONS:
            raise ValueError(f"unknown sweep setting {key!r}; valid: {', '.join(SPEC_OPTIONS)}, {GRID}")
        option = SPEC_OPTIONS[field]
        values[field] = read_grid(option, value) if option.grid == field else read_value(option, value)
    twice = [name for name in grid if values.get(name) is not None
             or (name in ("actor_hidden", "critic_hidden") and values.get("hidden") is not None)]
    if twice:
        flags = OPTIONS[twice[0]].cli_flag + (" or --hidden" if twice[0].endswith("_hidden") else "")
        raise ValueError(f"{twice[0]} is given both as a --grid axis and as its own option ({flags}); give it once")
    spec = SweepSpec(**values, grid=tuple(grid.items()))
    check_grid(spec)
    return spec


def grid_keys() -> list[str]:
    """The settings a --grid may vary: every declared learner setting except K (--k is its own axis)."""
    fields = {f.name for method in ("drol", "fql") for f in dataclasses.fields(learner_config_class(method))}
    return [name for name, option in OPTIONS.items() if option.destination == "config" and name in fields
            and name != "num_candidates"]


def accepts(ablation: str, name: str) -> bool:
    """Whether `ablation` takes setting `name` from a grid: it applies, and the variant does not fix it."""
    return option_applies(ablation, name) and name not in variant(ablation).fixed


def read_grid_axes(given: Any, where: str) -> dict[str, tuple[Any, ...]]:
    """Grid axes {setting: (value, ...)} from a sweep file's [grid] table or the --grid texts (["bc_coef=0.3,1",
    ...]); None: none. Raises ValueError (one line)."""
    if given is None:
        return {}
    if isinstance(given, dict):
        items = list(given.items())
    elif isinstance(given, (list, tuple)) and all(isinstance(text, str) for text in given):
        items = []
        for text in given:
            key, equals, values = text.partition("=")
            if not equals or not key.strip():
                raise ValueError(f"malformed --grid {text!r}; write SETTING=V1,V2,... like bc_coef=0.3,1,3")
            items.append((key.strip(), values))
    else:
        raise ValueError(f"{where} must be a table of setting = [values], got {given!r}")
    axes: dict[str, tuple[Any, ...]] = {}
    for key, values in items:
        name = key.replace("-", "_")
        if name not in grid_keys():
            raise ValueError(f"{where}: {key!r} is not a learner setting a grid can vary; valid: "
                             f"{', '.join(grid_keys())} (K: --k)")
        if name in axes:
            raise ValueError(f"{where} lists {name} twice; give each setting once")
        axes[name] = read_axis_values(OPTIONS[name], values, where)
    return axes


def read_axis_values(option: Option, values: Any, where: str) -> tuple[Any, ...]:
    """The values of one grid axis: TOML values ([0.3, 1]; widths [[64, 64], [128]]) or comma-separated text
    ("0.3,1"; widths "64x64,128"). Raises ValueError (one line)."""
    name = option.name
    if isinstance(values, str):
        if not values.strip():
            raise ValueError(f"empty grid: {where} {name} lists no value; give values like {name}=0.3,1,3")
        items: list[Any] = split_items(values, f"{where} {name}", "0.3,1,3")
    elif isinstance(values, list):
        items = values
    else:
        raise ValueError(f"{where} {name} must be a list of values, got {values!r}")
    if not items:
        raise ValueError(f"empty grid: {where} {name} lists no value; give values like {name} = [0.3, 1, 3]")
    read = tuple(read_axis_value(option, item, where) for item in items)
    if len(set(read)) != len(read):
        raise ValueError(f"{where} {name} lists a value twice: {values!r}")
    return read


def read_axis_value(option: Option, item: Any, where: str) -> Any:
    """One grid value of `option` from its text ('0.3', 'true', '64x64') or TOML value. Raises ValueError (one line)."""
    if isinstance(item, str) and option.kind != "str":
        text = item.strip()
        try:
            if option.kind == "widths":
                item = text.replace("x", ",")
            elif option.kind == "bool" and text.lower() in ("true", "false"):
                item = text.lower() == "true"
            elif option.kind in ("int", "float"):
                item = int(text) if option.kind == "int" else float(text)
        except ValueError:
            raise ValueError(f"{where} {option.name}: {item!r} is not {'an int' if option.kind == 'int' else 'a float'}"
                             f"; give values like {option.name}=0.3,1,3") from None
    try:
        return read_value(option, item)
    except ValueError as error:
        raise ValueError(f"{where} {option.name}: {error}") from None


def check_grid(spec: SweepSpec) -> None:
    """Raise ValueError (one line) when a grid axis is a setting no chosen ablation accepts, naming those that do."""
    for name, _ in spec.grid:
        if spec.ablations and not any(accepts(ablation, name) for ablation in spec.ablations):
            takers = [v for v in VARIANTS if v != "refresh-N" and accepts(v, name)]
            raise ValueError(f"--grid {name}: no chosen ablation accepts it (--ablations {','.join(spec.ablations)}); "
                             f"it applies to {', '.join(takers)}")


def grid_points(spec: SweepSpec, ablation: str) -> list[tuple[tuple[str, Any], ...]]:
    """The grid's points for `ablation`: every combination of the axes it accepts, in grid order ([()]: no grid)."""
    axes = [(name, values) for name, values in spec.grid if accepts(ablation, name)]
    return [tuple(zip((name for name, _ in axes), combination))
            for combination in itertools.product(*(values for _, values in axes))]


def read_sweep_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML sweep file (checked by spec_from_values). Raises ValueError (one line)."""
    return read_toml(path, "sweep file")


def _toml_value(value: Any) -> str:
    """A TOML literal for a bool, number, string or tuple of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(map(_toml_value, value)) + "]"
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def sweep_file_text(spec: SweepSpec, note: str = "") -> str:
    """The sweep as TOML (the settings given; defaults left out), readable back by --from."""
    lines = [f"# drol-diag sweep, written {datetime.now().isoformat(timespec='seconds')}"]
    lines += [f"# {note}"] if note else []
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        if value is not None and value != () and field.name != GRID:
            lines.append(f"{field.name.replace('_', '-')} = {_toml_value(value)}")
    if spec.grid:  # (a TOML table comes after the top-level keys)
        lines += ["", f"[{GRID}]"] + [f"{name} = {_toml_value(values)}" for name, values in spec.grid]
    return "\n".join(lines) + "\n"


def write_sweep_file(path: Path, spec: SweepSpec, note: str = "") -> None:
    """Write the sweep as TOML atomically (a reader never sees half a file)."""
    store.write_bytes_atomic(path, sweep_file_text(spec, note).encode())


# ------------------------------------------------------------------------------------------
# Expanding the grid into groups, and each group's settings.


def expand(spec: SweepSpec) -> list[Group]:
    """Every (task, ablation, K, grid point) once, in grid order, all seeds in each group (fql: no K).
    Raises ValueError for an empty grid."""
    for name in ("tasks", "ablations", "seeds"):
        if not getattr(spec, name):
            raise ValueError(f"empty grid: --{name} lists nothing")
    groups: list[Group] = []
    for task in spec.tasks:
        for ablation in spec.ablations:
            for k in (None,) if ablation == FQL else (spec.k or (None,)):
                for point in grid_points(spec, ablation):
                    group = Group(task, ablation, k, spec.seeds, point)
                    if group not in groups:  # (a K listed twice)
                        groups.append(group)
    return groups


def run_settings(spec: SweepSpec, group: Group) -> dict[str, Any]:
    """The group's settings as resolve keywords (None: not given, or not for its ablation: the default)."""
    values = {name: getattr(spec, name) for name, option in OPTIONS.items() if not option.grid and option.sweep}
    keywords = {**resolve_keywords(values), "ablation": group.ablation, "num_candidates": group.k,
                **dict(group.settings), "grid_settings": tuple(name for name, _ in group.settings) or None}
    return {name: value if option_applies(group.ablation, name) else None for name, value in keywords.items()}


def resolve_group(spec: SweepSpec, group: Group) -> tuple[LearnerConfig, RunConfig]:
    """The group's resolved configs, exactly as its `drol-diag run` will resolve them."""
    return resolve(group.task, spec.profile, **run_settings(spec, group))


def option_text(value: Any) -> str:
    """A value as its command-line text (tuples comma-separated)."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def run_arguments(spec: SweepSpec, group: Group, out: Path) -> list[str]:
    """The `drol-diag run` arguments of a group (without --resume/--force), progress bar off."""
    args = ["--task", group.task, "--profile", spec.profile, "--out", str(out), "--no-progress"]
    for name, value in run_settings(spec, group).items():
        if isinstance(value, bool):  # (a flag: --normalize-q-loss / --no-normalize-q-loss)
            args += [OPTIONS[name].cli_flag if value else "--no-" + OPTIONS[name].cli_flag[2:]]
        elif value is not None:
            args += [OPTIONS[name].cli_flag, option_text(value)]
    if spec.dataset_dir is not None:  # (absolute: a Ray worker may run elsewhere)
        args += [OPTIONS["dataset_dir"].cli_flag, os.path.abspath(spec.dataset_dir)]
    return args


def unused_options(spec: SweepSpec, groups: list[Group]) -> list[str]:
    """Options given that reach no group of the grid (e.g. --alpha without fql), as option names."""
    return [OPTIONS[name].cli_flag for name, value in resolve_keywords(dataclasses.asdict(spec)).items()
            if value is not None and name not in ("ablation", "num_candidates")
            and not any(option_applies(g.ablation, name) for g in groups)]
