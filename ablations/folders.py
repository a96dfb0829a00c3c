"""A run folder as a sweep sees it: new, finished, resumable, conflicting, or held by another process.

A sweep never mixes settings in one folder: a folder is skipped or resumed only when its
config.json has the settings the sweep would give it (`settings_record`); `steps` may grow
(resuming extends the run), every other setting must match.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drol.config import LearnerConfig
from drol_diag.runfolder import store
from drol_diag.runfolder.record import comparable, setting_differences
from drol_diag.settings import RunConfig

NEW = "new"  # no config.json: never started
FINISHED = "finished"  # summary.json at the sweep's steps (or every seed diverged)
RESUMABLE = "resumable"  # same settings, a checkpoint to go on from
UNSTARTED = "unstarted"  # same settings, config.json but no checkpoint yet: nothing to resume
CONFLICT = "conflict"  # other settings (or more steps) than the sweep's

SCHEDULE_FIELDS = ("log_interval", "eval_interval", "eval_episodes", "checkpoint_interval")  # must match too


@dataclass(frozen=True)
class FolderState:
    """What a run folder holds, for the sweep's decision to skip, resume or (re)start it."""

    kind: str  # NEW, FINISHED, RESUMABLE, UNSTARTED or CONFLICT
    steps_done: int | None = None  # updates per seed summary.json reports (None: no summary)
    detail: str = ""  # CONFLICT: what differs, one line


def settings_of(record: dict[str, Any]) -> dict[str, Any]:
    """The settings of a config.json record a sweep compares: train.comparable's (learner config,
    task, ablation, seeds) plus the schedule (SCHEDULE_FIELDS), as plain JSON values."""
    schedule = {name: record["run"][name] for name in SCHEDULE_FIELDS}
    return {**comparable(record), **json.loads(json.dumps(schedule))}


def settings_record(learner: LearnerConfig, run: RunConfig, diagnostics: dict[str, Any]) -> dict[str, Any]:
    """The settings (settings_of) a run of these configs and diagnostics settings
    (train.diagnostics_record) writes into its config.json."""
    return settings_of({"learner": dataclasses.asdict(learner), "run": dataclasses.asdict(run),
                        "diagnostics": diagnostics})


def read_record(path: Path) -> dict[str, Any] | None:
    """A run folder's JSON file (None if absent). Raises ValueError (one line) if unreadable."""
    if not path.exists():
        return None
    try:
        return store.read_json(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None


def folder_state(run_dir: Path, expected: dict[str, Any], steps: int) -> FolderState:
    """Where the run folder stands against the settings `expected` (settings_record) and `steps`."""
    config = read_record(run_dir / store.CONFIG_FILE)
    if config is None:
        return FolderState(NEW)
    found = settings_of(config)
    changed = [name for name in expected if found.get(name) != expected[name]]
    if changed:
        differences = setting_differences({k: found.get(k) for k in expected}, expected, "run folder", "this sweep")
        return FolderState(CONFLICT, detail=f"its {', '.join(changed)} differ from this sweep's: "
                                            f"{'; '.join(differences)} (see {run_dir / store.CONFIG_FILE})")
    summary = read_record(run_dir / store.SUMMARY_FILE)
    done = None if summary is None else int(summary["steps"])
    if done is not None and done > steps:
        return FolderState(CONFLICT, done, f"it has {done} updates per seed, more than this sweep's {steps}")
    if done is not None and (done == steps or min(summary["diverged_steps"]) >= 0):
        return FolderState(FINISHED, done)
    return FolderState(RESUMABLE if (run_dir / store.CHECKPOINT_FILE).exists() else UNSTARTED, done)


def lock_holder(run_dir: Path) -> str | None:
    """Who holds the run folder's lock (store.run_lock), e.g. 'pid 123 on node7'; None if nobody."""
    path = store.lock_path(run_dir)
    if not path.exists():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None
