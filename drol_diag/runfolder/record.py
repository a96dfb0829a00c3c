"""What a run folder records about its run: where it lives, config.json's content, and which recorded
settings must match for a run to be resumed or skipped."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import jax

from drol.config import LearnerConfig
from drol_diag.platform import device_record
from drol_diag.runfolder import store
from drol_diag.settings import RunConfig
from drol_diag.settings.options import DEFAULT_PROBES
from drol_diag.tasks import Task, task_folder_name
from drol_diag.tasks.base import undertrained_level


def run_point(run: RunConfig, learner: LearnerConfig) -> list[str]:
    """The run's name under its task: [<ablation>, k<K>, <setting>=<value> for each setting a sweep's grid
    varies (run.grid_settings)]; the run folder joins it with '-', its W&B runs with '/'."""
    return [run.ablation, f"k{learner.num_candidates}",
            *(f"{name}={setting_text(getattr(learner, name))}" for name in run.grid_settings)]


def run_dir_for(out: Path, run: RunConfig, learner: LearnerConfig) -> Path:
    """<out>/<task folder>/<ablation>-k<K>, e.g. <ablation>-k<K>-bc_coef=0.3-lr=0.0001 in a grid (run_point);
    the task folder is drol_diag.tasks.task_folder_name(task) (the task name itself unless it has '/' or ':')."""
    return Path(out) / task_folder_name(run.task) / "-".join(run_point(run, learner))


def setting_text(value: Any) -> str:
    """A setting's value as a run folder's name shows it: floats exactly (repr: 0.0001, 3e-05, 1.0), widths as
    64x64, the rest as str."""
    if isinstance(value, (tuple, list)):
        return "x".join(map(str, value))
    return repr(value) if isinstance(value, float) else str(value)


def config_record(learner: LearnerConfig, run: RunConfig, task: Task, extra: dict[str, Any]) -> dict[str, Any]:
    """Everything config.json holds."""
    return {
        "learner": dataclasses.asdict(learner),
        "run": dataclasses.asdict(run),
        "task": {"name": task.name, "obs_dim": task.obs_dim, "action_dim": task.action_dim,
                 "transitions": int(len(task.dataset["actions"])),
                 # (pairs, in the task's order: config.json's keys are sorted)
                 "reference_levels": [[name, float(level)] for name, level in task.reference_levels.items()],
                 "behaviour_level": (undertrained_level(task.reference_levels) or (None,))[0]},  # (the yardstick)
        "versions": store.package_versions(),
        "git_commit": store.git_commit(),
        "command": " ".join(sys.argv),
        "backend": jax.default_backend(),
        "devices": device_record(),
        **extra,
    }


PROBES_REQUESTED = "probes_requested"  # config.json's diagnostics: the probes asked for, where fewer were used


def diagnostics_record(enabled: bool = True, num_probes: int = DEFAULT_PROBES,
                       transitions: int | None = None) -> dict[str, Any]:
    """The diagnostics settings config.json records: "probes" used, at most `transitions` (None: not known), and
    "probes_requested" where that is fewer than asked for."""
    used = num_probes if transitions is None else min(num_probes, transitions)
    return {"enabled": enabled, "probes": used, **({PROBES_REQUESTED: num_probes} if used < num_probes else {})}


def diagnostics_settings(diagnostics: dict[str, Any] | None) -> dict[str, Any] | None:
    """A diagnostics record as the settings asked for ("probes": the number asked for), which a resume must match."""
    if not isinstance(diagnostics, dict) or PROBES_REQUESTED not in diagnostics:
        return diagnostics
    settings = {key: value for key, value in diagnostics.items() if key != PROBES_REQUESTED}
    return {**settings, "probes": diagnostics[PROBES_REQUESTED]}


# {comparable()'s key: where in config.json it comes from}, the prefix of its settings' names in messages
COMPARED = {"learner settings": "learner", "task": "run.task", "ablation": "run.ablation", "seeds": "run.seeds",
            "diagnostics settings": "diagnostics", "matmul precision": "run.matmul_precision"}


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """The fields that must match for a run to be resumed (matmul precision: "default" where not recorded)."""
    fields = {"learner settings": record["learner"], "task": record["run"]["task"],
              "ablation": record["run"]["ablation"], "seeds": record["run"]["seeds"],
              "diagnostics settings": diagnostics_settings(record.get("diagnostics")),
              "matmul precision": record["run"].get("matmul_precision", "default")}
    return json.loads(json.dumps(fields))  # tuples and lists compare equal after a JSON round trip


def leaf_settings(fields: dict[str, Any]) -> dict[str, Any]:
    """comparable()'s fields (and any others) one setting each, named by where config.json holds it:
    {"learner.bc_coef": 0.3, "run.seeds": [0, 1], "diagnostics.probes": 1024, ...}."""
    leaves: dict[str, Any] = {}

    def add(name: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                add(f"{name}.{key}", inner)
        else:
            leaves[name] = value
    for key, value in fields.items():
        add(COMPARED.get(key, key), value)
    return leaves


ABSENT = object()  # a setting one side does not record


def setting_differences(before: dict[str, Any], after: dict[str, Any], before_label: str = "run folder",
                        after_label: str = "this command") -> list[str]:
    """Each setting that differs between two comparable() dicts, both values given as config.json writes them:
    ['learner.bc_coef: 0.7 (run folder) vs 0.3 (this command)', ...]; a setting only one side has shows as
    'absent' on the other."""
    old, new = leaf_settings(before), leaf_settings(after)

    def shown(value: Any) -> str:
        return "absent" if value is ABSENT else json.dumps(value)
    return [f"{name}: {shown(old.get(name, ABSENT))} ({before_label}) vs {shown(new.get(name, ABSENT))} "
            f"({after_label})" for name in [*old, *(n for n in new if n not in old)]
            if old.get(name, ABSENT) != new.get(name, ABSENT)]
