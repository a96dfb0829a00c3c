"""Every run setting, declared once: `OPTIONS` gives the `drol-diag run` and `sweep` options, the sweep grid's
settings and file reader (`read_value`), the keywords `resolve` receives (`resolve_keywords`) and the "option
does not apply" errors (`applies_to`). A new setting of a variant: its config field (drol.config), the code that
uses it, and one `Option` here (`variants=` when only some ablations take it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drol_diag.settings.parsing import parse_seeds, parse_widths, split_items

DEFAULT_PROBES = 1024  # M: probe transitions per seed for the diagnostics

KINDS = ("int", "float", "str", "bool", "widths", "seeds", "devices", "names")
# Where a setting goes: a resolve() keyword, one of the run's other inputs, or "executor" (sweep only).
DESTINATIONS = ("config", "task", "profile", "widths", "dataset", "executor")


@dataclass(frozen=True)
class Option:
    """One run setting: the `--flag` of `drol-diag run` (and of `sweep`, or its grid axis)."""

    name: str  # the setting's name: a config field (resolve keyword) or a run input; flag --<name-with-dashes>
    kind: str  # one of KINDS: how its text or TOML value is read
    help: str  # one line for --help (the default is appended)
    default: Any = None  # the value when not given; None: resolved from presets and the profile
    default_text: str = ""  # the default as --help shows it, when `default` is None (or says less than this)
    destination: str = "config"  # one of DESTINATIONS
    flag: str = ""  # the command-line flag when not --<name-with-dashes>
    variants: tuple[str, ...] = ()  # only these ablations accept it; (): those whose method's config has the field
    grid: str = ""  # a sweep grid axis: the sweep's option (a list of values) instead of one value per group
    sweep: bool = True  # False: a `drol-diag run` option the sweep sets itself (no sweep flag or sweep-file key)

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def shown_default(self) -> str:
        """The default as --help shows it."""
        if self.default_text:
            return self.default_text
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        if isinstance(self.default, tuple):
            return ",".join(map(str, self.default))
        return str(self.default)


OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("task", "str", "an embedded task (modes-2d, modes-5d; arc-2d, cliff-2d, ...: 2, 5, 8, 21 dims; corridor-2d, "
           "corridor-8d: multi-step), an OGBench single-task name, a D4RL name or Minari id, npz:PATH, or "
           "package.module:factory", default="modes-2d",
           destination="task", grid="tasks"),
    Option("ablation", "str", "variant: dynamic (the paper's method), static-routing, ... (drol-diag list ablations)",
           default="dynamic", grid="ablations"),
    Option("num_candidates", "int", "K, candidates per state", default_text="family preset of --preset, else 16",
           flag="--k", grid="k"),
    Option("seeds", "seeds", "seeds trained together, e.g. 0,1,2 or 0-4", default=(0, 1, 2)),
    Option("steps", "int", "gradient updates per seed", default_text="profile"),
    Option("batch_size", "int", "transitions per update", default_text="256"),
    Option("hidden", "widths", "hidden widths of actor and critic, e.g. 512,512,512,512", default_text="profile",
           destination="widths"),
    Option("actor_hidden", "widths", "actor widths (overrides --hidden)", default_text="--hidden"),
    Option("critic_hidden", "widths", "critic widths (overrides --hidden)", default_text="--hidden"),
    Option("bc_coef", "float", "weight of winner-only BC (DROL variants)", default_text="family preset, else 1"),
    Option("q_coef", "float", "weight of critic guidance", default_text="1"),
    Option("routing_temperature", "float", "soft-routing: softmin temperature", default_text="1",
           variants=("soft-routing",)),
    Option("alpha", "float", "fql: weight of the one-step distillation", default_text="family preset, else 10"),
    Option("lr", "float", "Adam learning rate", default_text="3e-4"),
    Option("discount", "float", "discount", default_text="family preset, else 0.99"),
    Option("tau", "float", "target Polyak rate", default_text="0.005"),
    Option("q_agg", "str", "TD target over the ensemble: mean or min", default_text="family preset, else mean"),
    Option("num_critics", "int", "critic ensemble size", default_text="2"),
    Option("normalize_q_loss", "bool", "divide L_q by mean |Q|", default_text="on; off for fql"),
    Option("eval_interval", "int", "updates between evaluations", default_text="profile"),
    Option("eval_episodes", "int", "episodes per evaluation", default_text="profile"),
    Option("log_interval", "int", "updates between metric rows", default_text="profile"),
    Option("checkpoint_interval", "int", "updates between checkpoints", default_text="profile"),
    Option("matmul_precision", "str", "float32 matmul precision (JAX's jax_default_matmul_precision): default (GPU: "
           "TF32 on Ampere and newer), high, or highest (full float32); no effect on CPU", default_text="default"),
    Option("grid_settings", "names", "the settings a sweep's --grid varies, e.g. bc_coef,lr: the run folder is named "
           "by their values (<ablation>-k<K>-bc_coef=0.3-lr=0.0001) and open_runs gives each a dim (drol-diag sweep "
           "sets it)", default_text="none", sweep=False),
    Option("profile", "str", "auto, smoke (tiny, fast) or paper (published sizes)", default="auto",
           destination="profile"),
    Option("preset", "str", "published column of the family presets: tuned (DROL*: each family's tuned K) or k16 "
           "(DROL(16): K 16; D4RL antmaze-large-* bc_coef 0.1)", default_text="tuned"),
    Option("dataset_dir", "str", "OGBench dataset folder", default_text="$OGBENCH_DATA_DIR, else ~/.ogbench/data",
           destination="dataset"),
    Option("diagnostics", "bool", "record routing diagnostics on probe transitions at each log", default=True),
    Option("probes", "int", "probe transitions per seed for the diagnostics", default=DEFAULT_PROBES),
    Option("density", "str", "the learned behaviour density the diagnostics read support by: auto (fitted once per "
           "dataset and cached; skipped, with a note, for a dataset too small to fit) or off", default="auto"),
    Option("wandb", "str", "Weights & Biases project: each seed also logged as a W&B run (pip install "
           "'drol-diag[wandb]'; offline, for `wandb sync`, without W&B credentials)", default_text="off"),
    Option("gpus", "devices", "local executor: GPUs to spread the groups over, e.g. 0,1 (as CUDA_VISIBLE_DEVICES or "
           "nvidia-smi -L number them), or none (CPU)", default_text="the GPUs found: CUDA_VISIBLE_DEVICES, else "
           "nvidia-smi -L; none without JAX's CUDA build", destination="executor"),
    Option("groups_per_gpu", "int", "local executor: groups sharing one GPU at a time (each gets 1/N of its memory)",
           default_text="1", destination="executor"),
    Option("gpus_per_group", "float", "ray: GPUs each group's task asks for (Ray's num_gpus; a fraction shares one); "
           "slurm: GPUs each group's job asks for (a whole number)", default_text="0", destination="executor"),
    Option("partition", "str", "slurm: the partition each group's job runs in", default_text="the cluster's default",
           destination="executor"),
    Option("time_limit", "int", "slurm: minutes each group's job may run; at its limit (or when preempted) it requeues "
           "itself and resumes from its checkpoint", default_text="240", destination="executor"),
    Option("memory_gb", "float", "slurm: memory of each group's job, in GB", default_text="the partition's default",
           destination="executor"),
    Option("array_parallelism", "int", "slurm: groups running at once (the job array's %N)", default_text="all",
           destination="executor"),
    Option("slurm_cluster", "str", "slurm: where submitit sends the jobs: slurm (sbatch), or local (submitit's local "
           "executor: each job a process on this machine, signalled and requeued alike; to try a sweep out)",
           default_text="slurm", destination="executor"),
)}


def applies_to(name: str) -> tuple[str, ...]:
    """The ablations a setting is restricted to ((): no restriction beyond its method's config)."""
    option = OPTIONS.get(name)
    return option.variants if option else ()


RESTRICTED = frozenset(name for name, option in OPTIONS.items() if option.variants)  # e.g. routing_temperature
RUN_OPTIONS = {name: option for name, option in OPTIONS.items() if option.destination != "executor"}  # drol-diag run's


# ------------------------------------------------------------------------------------------
# Reading values: command-line text or sweep-file (TOML) values, one reader per kind.

def _as_text(value: Any, key: str) -> str:
    """A list of integers as the command line's comma-separated text (strings pass through)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return ",".join(map(str, value))
    if isinstance(value, str):
        return value
    raise ValueError(f"{key} must be integers (a list, or comma-separated text), got {value!r}")


def _scalar(kind: type) -> Callable[[Any, str], Any]:
    """A reader of one value of `kind` (int, float, str or bool), with a one-line error naming the key."""
    def read(value: Any, key: str) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{key} must be {'an' if kind is int else 'a'} {kind.__name__}, got {value!r}")
        if kind is float and not math.isfinite(value):  # (inf and nan read as floats, and train on them)
            raise ValueError(f"--{key} must be a finite number, got {value}")
        return value
    return read


def read_names(value: Any, key: str) -> tuple[str, ...]:
    """'a,b' or ['a', 'b'] -> ('a', 'b'); '' or [] -> (). Raises ValueError (one line) for an empty item."""
    if isinstance(value, str) and not value.strip():
        return ()
    example = {"tasks": "modes-2d,modes-5d", "grid-settings": "bc_coef,lr"}.get(key, "dynamic,static-routing")
    items = split_items(value, f"--{key}", example) if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"{key} must be comma-separated names or a list of names, got {value!r}")
    if not all(item.strip() for item in items):
        raise ValueError(f"malformed {key} {value!r}: an item is empty; list names like {example.split(',')}")
    return tuple(item.strip() for item in items)


def read_ks(value: Any, key: str) -> tuple[int, ...]:
    """'1,4,16' or [1, 4, 16] -> (1, 4, 16), every K >= 1; '' or [] -> () (each task's preset K)."""
    text = _as_text(value, key)
    if not text.strip():
        return ()
    parts = split_items(text, "--k", "1,4,16,64")
    try:
        ks = tuple(int(part) for part in parts)
    except ValueError:
        raise ValueError(f"malformed --k {text!r}; use comma-separated integers like 1,4,16,64") from None
    if any(k < 1 for k in ks):
        raise ValueError(f"K must be >= 1 (candidates per state), got --k {text}")
    return ks


def read_devices(value: Any, key: str) -> tuple[int, ...]:
    """'0,1' or [0, 1] -> (0, 1); 'none' (or '') -> () (no GPU); distinct non-negative integers."""
    text = _as_text(value, key).strip()
    if text.lower() in ("", "none"):
        return ()
    items = split_items(text, f"--{key}", "0,1")
    if not all(item.isdigit() for item in items):
        raise ValueError(f"malformed --{key} {text!r}; list GPU indices (non-negative integers) like 0,1, or none")
    devices = tuple(int(item) for item in items)
    if len(set(devices)) != len(devices):
        raise ValueError(f"malformed --{key} {text!r}: a GPU is listed twice")
    return devices


READERS: dict[str, Callable[[Any, str], Any]] = {
    "int": _scalar(int), "float": _scalar(float), "str": _scalar(str), "bool": _scalar(bool),
    "seeds": lambda value, key: parse_seeds(_as_text(value, key)),
    "devices": read_devices,
    "names": read_names,
}


def read_value(option: Option, value: Any) -> Any:
    """One value of `option` from command-line text or a TOML value (None stays None); ValueError (one line)."""
    if value is None:
        return None
    if option.kind == "widths":
        return parse_widths(_as_text(value, option.cli_flag), option.cli_flag)
    value = READERS[option.kind](value, option.name.replace("_", "-"))
    if option.name == "probes" and value < 1:
        raise ValueError(f"--probes must be a positive integer, got {value}")
    return value


def read_grid(option: Option, value: Any) -> tuple:
    """A sweep grid axis: several values of `option` (tasks, ablations, K)."""
    return read_ks(value, option.grid) if option.kind == "int" else read_names(value, option.grid)


def resolve_keywords(values: dict[str, Any]) -> dict[str, Any]:
    """The resolve() keywords of read option values {name: value or None}: --hidden the default of both widths."""
    keywords = {name: values.get(name) for name, option in OPTIONS.items() if option.destination == "config"}
    for name in ("actor_hidden", "critic_hidden"):
        keywords[name] = keywords[name] or values.get("hidden")
    return keywords
