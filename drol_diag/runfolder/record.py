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
from drol_diag.runfolder import store
from drol_diag.settings import RunConfig
from drol_diag.settings.options import DEFAULT_PROBES
from drol_diag.tasks import Task, task_folder_name


def run_dir_for(out: Path, run: RunConfig, learner: LearnerConfig) -> Path:
    """<out>/<task folder>/<ablation>-k<K>; the task folder is drol_diag.tasks.task_folder_name(task)
    (the task name itself unless it has '/' or ':')."""
    return Path(out) / task_folder_name(run.task) / f"{run.ablation}-k{learner.num_candidates}"


def config_record(learner: LearnerConfig, run: RunConfig, task: Task, extra: dict[str, Any]) -> dict[str, Any]:
    """Everything config.json holds."""
    return {
        "learner": dataclasses.asdict(learner),
        "run": dataclasses.asdict(run),
        "task": {"name": task.name, "obs_dim": task.obs_dim, "action_dim": task.action_dim,
                 "transitions": int(len(task.dataset["actions"]))},
        "versions": store.package_versions(),
        "git_commit": store.git_commit(),
        "command": " ".join(sys.argv),
        "backend": jax.default_backend(),
        **extra,
    }


def diagnostics_record(enabled: bool = True, num_probes: int = DEFAULT_PROBES) -> dict[str, Any]:
    """The diagnostics settings config.json records (a resumed run must keep them: they shape its log)."""
    return {"enabled": enabled, "probes": num_probes}


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """The fields that must match for a run to be resumed: learner config, task, ablation, seeds."""
    fields = {"learner settings": record["learner"], "task": record["run"]["task"],
              "ablation": record["run"]["ablation"], "seeds": record["run"]["seeds"],
              "diagnostics settings": record.get("diagnostics")}
    return json.loads(json.dumps(fields))  # tuples and lists compare equal after a JSON round trip
