"""The sweep grid: what the command line or a sweep file asks for, expanded into groups of runs.

A `SweepSpec` is the grid (tasks x ablations x K, the seeds) plus the options every run shares.
A `Group` is one run folder `<out>/<task>/<ablation>-k<K>`: every seed of one (task, ablation,
K), trained together in one compiled program by one `drol-diag run` (the seeds are vmapped).

Sweep files are TOML with keys mirroring the options (`tasks`, `ablations`, `k`, `seeds`,
`steps`, `profile`, `hidden`, `batch-size`, ...); lists may be TOML arrays or the command line's
comma-separated strings ("0-7" for seeds). Options given on the command line override the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from drol.config import LearnerConfig
from drol_diag.runfolder import store
from drol_diag.settings import RunConfig, option_applies, resolve
from drol_diag.settings.options import OPTIONS, Option, read_grid, read_value, resolve_keywords
from drol_diag.settings.settings_file import read_toml

SWEEP_FILE = "sweep.toml"  # the grid a sweep ran, written into its results folder
FQL = "fql"  # the one ablation without K: it runs once per task, in folder fql-k1


def _spec_field(option: Option) -> tuple[str, Any, Any]:
    """The SweepSpec field of an option: a grid axis (a tuple of values) or one value for every group."""
    if option.grid:
        default = () if option.default is None else (option.default,)
        return option.grid, tuple, dataclasses.field(default=default)
    return option.name, Any, dataclasses.field(default=option.default)


# A sweep: the grid (tasks x ablations x K; empty k: each task's preset K) and every other run option,
# passed to every group's run (None: the run's default). Its fields are drol_diag.settings.options.OPTIONS.
SweepSpec = dataclasses.make_dataclass("SweepSpec", [_spec_field(option) for option in OPTIONS.values()],
                                       frozen=True)
SweepSpec.__module__ = __name__
SPEC_OPTIONS: dict[str, Option] = {option.grid or option.name: option for option in OPTIONS.values()}


@dataclass(frozen=True)
class Group:
    """One run folder's worth of work: every seed of one (task, ablation, K) in one program."""

    task: str
    ablation: str
    k: int | None  # None: the task's preset K; always None for fql (no candidates; folder fql-k1)
    seeds: tuple[int, ...]


def spec_from_values(file_values: dict[str, Any], option_values: dict[str, Any]) -> SweepSpec:
    """The sweep from a sweep file's values and the command line's (None: not given; these win).
    Keys are SweepSpec fields (dashes or underscores). Raises ValueError (one line) for bad values."""
    given = {**file_values, **{key: value for key, value in option_values.items() if value is not None}}
    values = {}
    for key, value in given.items():
        field = key.replace("-", "_")
        if field not in SPEC_OPTIONS:
            raise ValueError(f"unknown sweep setting {key!r}; valid: {', '.join(SPEC_OPTIONS)}")
        option = SPEC_OPTIONS[field]
        values[field] = read_grid(option, value) if option.grid == field else read_value(option, value)
    return SweepSpec(**values)


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
        if value is not None and value != ():
            lines.append(f"{field.name.replace('_', '-')} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def write_sweep_file(path: Path, spec: SweepSpec, note: str = "") -> None:
    """Write the sweep as TOML atomically (a reader never sees half a file)."""
    store.write_bytes_atomic(path, sweep_file_text(spec, note).encode())


# ------------------------------------------------------------------------------------------
# Expanding the grid into groups, and each group's settings.


def expand(spec: SweepSpec) -> list[Group]:
    """Every (task, ablation, K) of the grid once, in grid order, all seeds in each group.
    fql has no K: one group per task. Raises ValueError for an empty grid."""
    for name in ("tasks", "ablations", "seeds"):
        if not getattr(spec, name):
            raise ValueError(f"empty grid: --{name} lists nothing")
    groups: list[Group] = []
    for task in spec.tasks:
        for ablation in spec.ablations:
            for k in (None,) if ablation == FQL else (spec.k or (None,)):
                group = Group(task, ablation, k, spec.seeds)
                if group not in groups:  # (a K listed twice)
                    groups.append(group)
    return groups


def run_settings(spec: SweepSpec, group: Group) -> dict[str, Any]:
    """The group's settings as drol_diag.settings.resolve keywords (None: not given, or not for this
    group's ablation, so the default applies)."""
    values = {name: getattr(spec, name) for name, option in OPTIONS.items() if not option.grid}
    keywords = {**resolve_keywords(values), "ablation": group.ablation, "num_candidates": group.k}
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
        if value is not None:
            args += [OPTIONS[name].cli_flag, option_text(value)]
    for name, option in OPTIONS.items():  # the run's other inputs: dataset folder, diagnostics settings, W&B
        value = getattr(spec, name) if option.destination in ("dataset", "diagnostics", "tracking") else None
        if option.destination == "dataset" and value is not None:
            value = os.path.abspath(value)  # (a Ray worker may run elsewhere)
        if isinstance(value, bool):
            args += [option.cli_flag if value else "--no-" + option.cli_flag[2:]]
        elif value is not None:
            args += [option.cli_flag, option_text(value)]
    return args


def unused_options(spec: SweepSpec, groups: list[Group]) -> list[str]:
    """Options given that reach no group of the grid (e.g. --alpha without fql), as option names."""
    return [OPTIONS[name].cli_flag for name, value in resolve_keywords(dataclasses.asdict(spec)).items()
            if value is not None and name not in ("ablation", "num_candidates")
            and not any(option_applies(g.ablation, name) for g in groups)]
