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
from typing import Any, Callable

try:
    import tomllib
except ImportError:  # Python 3.10: the same parser as a package
    import tomli as tomllib

from drol.config import LearnerConfig

from drol_diag.settings import RunConfig, option_applies, resolve
from drol_diag.runfolder import store
from drol_diag.settings.parsing import parse_seeds, parse_widths

SWEEP_FILE = "sweep.toml"  # the grid a sweep ran, written into its results folder
FQL = "fql"  # the one ablation without K: it runs once per task, in folder fql-k1


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: the grid and the options passed to every group's run (None: the run's default)."""

    tasks: tuple[str, ...] = ("modes-2d",)  # task names
    ablations: tuple[str, ...] = ("dynamic",)  # variants (drol-diag list ablations)
    k: tuple[int, ...] = ()  # K values; empty: each task's preset K (16 where none)
    seeds: tuple[int, ...] = (0, 1, 2)  # trained together in every group
    steps: int | None = None  # updates per seed [profile]
    profile: str = "auto"  # sizing profile: auto, smoke or paper
    hidden: tuple[int, ...] | None = None  # actor and critic widths [profile]
    actor_hidden: tuple[int, ...] | None = None  # overrides hidden for the actor
    critic_hidden: tuple[int, ...] | None = None  # overrides hidden for the critic
    batch_size: int | None = None  # transitions per update [256]
    lr: float | None = None  # Adam learning rate [3e-4]
    bc_coef: float | None = None  # DROL variants only [family preset]
    alpha: float | None = None  # fql only [family preset]
    routing_temperature: float | None = None  # soft-routing only [1]
    eval_interval: int | None = None  # updates between evaluations [profile]
    eval_episodes: int | None = None  # episodes per evaluation [50]
    log_interval: int | None = None  # updates between log rows [profile]
    checkpoint_interval: int | None = None  # updates between checkpoints [profile]
    dataset_dir: str | None = None  # OGBench dataset folder [$OGBENCH_DATA_DIR or ~/.ogbench/data]
    probes: int | None = None  # probe transitions per seed for the diagnostics [1024]
    diagnostics: bool | None = None  # record routing diagnostics [on]


@dataclass(frozen=True)
class Group:
    """One run folder's worth of work: every seed of one (task, ablation, K) in one program."""

    task: str
    ablation: str
    k: int | None  # None: the task's preset K; always None for fql (no candidates; folder fql-k1)
    seeds: tuple[int, ...]


# ------------------------------------------------------------------------------------------
# Reading option values (command-line strings, or TOML strings, numbers, arrays) into a SweepSpec.


def _names(value: Any, key: str) -> tuple[str, ...]:
    """'a,b' or ['a', 'b'] -> ('a', 'b'), blanks dropped."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"{key} must be comma-separated names or a list of names, got {value!r}")
    return tuple(item.strip() for item in items if item.strip())


def _as_text(value: Any, key: str) -> str:
    """A list of integers as the command line's comma-separated text (strings pass through)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return ",".join(map(str, value))
    if isinstance(value, str):
        return value
    raise ValueError(f"{key} must be integers (a list, or comma-separated text), got {value!r}")


def _ks(value: Any, key: str) -> tuple[int, ...]:
    """'1,4,16' or [1, 4, 16] -> (1, 4, 16); every K >= 1."""
    text = _as_text(value, key)
    try:
        ks = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"malformed --k {text!r}; use comma-separated integers like 1,4,16,64") from None
    if any(k < 1 for k in ks):
        raise ValueError(f"K must be >= 1 (candidates per state), got --k {text}")
    return ks


def _scalar(kind: type) -> Callable[[Any, str], Any]:
    """A reader of one value of `kind` (int, float, str or bool), with a one-line error naming the key."""
    def read(value: Any, key: str) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{key} must be {'an' if kind is int else 'a'} {kind.__name__}, got {value!r}")
        return value
    return read


READERS: dict[str, Callable[[Any, str], Any]] = {
    "tasks": _names, "ablations": _names, "k": _ks,
    "seeds": lambda value, key: parse_seeds(_as_text(value, key)),
    "hidden": lambda value, key: parse_widths(_as_text(value, key), "--hidden"),
    "actor_hidden": lambda value, key: parse_widths(_as_text(value, key), "--actor-hidden"),
    "critic_hidden": lambda value, key: parse_widths(_as_text(value, key), "--critic-hidden"),
    **{name: _scalar(int) for name in ("steps", "batch_size", "eval_interval", "eval_episodes", "log_interval",
                                       "checkpoint_interval", "probes")},
    **{name: _scalar(float) for name in ("lr", "bc_coef", "alpha", "routing_temperature")},
    "profile": _scalar(str), "dataset_dir": _scalar(str), "diagnostics": _scalar(bool),
}


def spec_from_values(file_values: dict[str, Any], option_values: dict[str, Any]) -> SweepSpec:
    """The sweep from a sweep file's values and the command line's (None: not given; these win).
    Keys are SweepSpec fields (dashes or underscores). Raises ValueError (one line) for bad values."""
    given = {**file_values, **{key: value for key, value in option_values.items() if value is not None}}
    values = {}
    for key, value in given.items():
        field = key.replace("-", "_")
        if field not in READERS:
            raise ValueError(f"unknown sweep setting {key!r}; valid: {', '.join(READERS)}")
        values[field] = READERS[field](value, key)
    if values.get("probes", 1) < 1:
        raise ValueError(f"--probes must be a positive integer, got {values['probes']}")
    return SweepSpec(**values)


def read_sweep_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML sweep file (checked by spec_from_values). Raises ValueError (one line)."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as error:
        raise ValueError(f"cannot read sweep file {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"sweep file {path} is not valid TOML: {error}") from None


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


def applies(option: str, ablation: str) -> bool:
    """Whether a learner option reaches a group of `ablation` (drol.config.option_applies): --bc-coef
    not fql, --alpha fql only, --routing-temperature soft-routing only, --k not fql."""
    return option_applies(ablation, option)


def run_settings(spec: SweepSpec, group: Group) -> dict[str, Any]:
    """The group's settings as drol.config.resolve keywords (None: not given, the default applies)."""
    settings = {
        "ablation": group.ablation, "num_candidates": group.k, "seeds": group.seeds, "steps": spec.steps,
        "batch_size": spec.batch_size, "actor_hidden": spec.actor_hidden or spec.hidden,
        "critic_hidden": spec.critic_hidden or spec.hidden, "lr": spec.lr, "bc_coef": spec.bc_coef,
        "alpha": spec.alpha, "routing_temperature": spec.routing_temperature,
        "eval_interval": spec.eval_interval, "eval_episodes": spec.eval_episodes,
        "log_interval": spec.log_interval, "checkpoint_interval": spec.checkpoint_interval,
    }
    return {name: value if applies(name, group.ablation) else None for name, value in settings.items()}


def resolve_group(spec: SweepSpec, group: Group) -> tuple[LearnerConfig, RunConfig]:
    """The group's resolved configs, exactly as its `drol-diag run` will resolve them."""
    return resolve(group.task, spec.profile, **run_settings(spec, group))


RUN_OPTION_NAMES = {"num_candidates": "--k"}  # resolve keywords whose run option is not --<name-with-dashes>


def run_arguments(spec: SweepSpec, group: Group, out: Path) -> list[str]:
    """The `drol-diag run` arguments of a group (without --resume/--force), progress bar off."""
    args = ["--task", group.task, "--profile", spec.profile, "--out", str(out), "--no-progress"]
    for name, value in run_settings(spec, group).items():
        if value is not None:
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            args += [RUN_OPTION_NAMES.get(name, "--" + name.replace("_", "-")), text]
    if spec.dataset_dir is not None:
        args += ["--dataset-dir", os.path.abspath(spec.dataset_dir)]  # (a Ray worker may run elsewhere)
    if spec.probes is not None:
        args += ["--probes", str(spec.probes)]
    if spec.diagnostics is not None:
        args += ["--diagnostics" if spec.diagnostics else "--no-diagnostics"]
    return args


def unused_options(spec: SweepSpec, groups: list[Group]) -> list[str]:
    """Options given that reach no group of the grid (e.g. --alpha without fql), as option names."""
    return ["--" + name.replace("_", "-") for name in ("bc_coef", "alpha", "routing_temperature")
            if getattr(spec, name) is not None and not any(applies(name, g.ablation) for g in groups)]
