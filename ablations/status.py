"""`drol-diag sweep --status DIR`: where every group of a sweep stands, whatever executor ran it.

Read-only. The groups are those of DIR/sweep.toml; each one's state comes from its run folder
(summary.json at the sweep's steps: done; its lock held: running; a checkpoint without a summary:
stopped, resumable), from its log (the last attempt's exit status: failed, with the log's last line; that of
Ctrl-C or SIGTERM: stopped, not failed), and, for groups submitted with --executor slurm, from the job's state
(queued while SLURM holds it, failed when it ended without finishing the run: submitit's log named).
"""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ablations import slurm
from ablations.executors import ATTEMPT_HEADER, log_tail
from ablations.grid import SWEEP_FILE, expand, read_sweep_file, resolve_group, spec_from_values
from ablations.sweep import group_diagnostics, log_path_for
from drol_diag.runfolder import folders, store
from drol_diag.runfolder.record import run_dir_for

DONE, RUNNING, QUEUED, FAILED, STOPPED, NOT_STARTED, CONFLICT, UNREADABLE = (
    "done", "running", "queued", "failed", "stopped", "not started", "conflict", "unreadable")
STATES = (DONE, RUNNING, QUEUED, FAILED, STOPPED, NOT_STARTED, CONFLICT, UNREADABLE)  # the count line's order
EXIT_LINE = re.compile(r"^=== exit status (-?\d+) after ")  # what executors.run_logged writes after an attempt
# Exit statuses of a run stopped by Ctrl-C or SIGTERM (its own 130/143, or killed by the signal): not a failure
INTERRUPTED = (130, 143, -signal.SIGINT, -signal.SIGTERM)


@dataclass(frozen=True)
class GroupStatus:
    """One group of a sweep, as --status shows it."""

    folder: str  # the run folder, relative to the results folder (<task>/<ablation>-k<K>)
    state: str  # one of STATES
    detail: str  # one line: steps done, who trains it, the job, or the failure and its log


@dataclass(frozen=True)
class Attempt:
    """The last attempt in a group log."""

    exit_status: int | None  # None: no exit line (it is running, or was killed)
    last_line: str  # the run's last line of output before the exit line ('' if none)


def last_attempt(log_path: Path) -> Attempt | None:
    """The last attempt recorded in a group log (None: no log, or no attempt in it)."""
    lines = log_tail(log_path) if log_path.exists() else []
    starts = [i for i, line in enumerate(lines) if line.startswith(ATTEMPT_HEADER)]
    if not starts:
        return None
    attempt = lines[starts[-1] + 1:]
    exit_match = EXIT_LINE.match(attempt[-1]) if attempt else None
    output = attempt[:-1] if exit_match else attempt
    return Attempt(int(exit_match.group(1)) if exit_match else None, output[-1] if output else "")


def group_statuses(out: Path) -> list[GroupStatus]:
    """Every group of the sweep in `out` (its sweep.toml), in grid order. Raises ValueError (one line)
    when `out` holds no sweep or its sweep file cannot be read."""
    out = Path(out).absolute()
    if not (out / SWEEP_FILE).is_file():
        raise ValueError(f"{out} holds no {SWEEP_FILE}: not the results folder of a drol-diag sweep")
    spec = spec_from_values(read_sweep_file(out / SWEEP_FILE), {})
    written = (out / SWEEP_FILE).stat().st_mtime  # (jobs submitted before the sweep last started are another run's)
    jobs = slurm.job_states(out, {name: job for name, job in slurm.read_jobs(out).items()
                                  if datetime.fromisoformat(job["submitted"]).timestamp() >= int(written)})
    statuses: dict[str, GroupStatus] = {}
    for group in expand(spec):
        learner, run = resolve_group(spec, group)
        run_dir = run_dir_for(out, run, learner)
        name = os.path.relpath(run_dir, out)
        if name not in statuses:  # (K left to the preset may name a folder an explicit K names)
            settings = folders.settings_record(learner, run, group_diagnostics(spec))
            statuses[name] = group_status(out, run_dir, name, settings, run.steps, jobs.get(name))
    return list(statuses.values())


def group_status(out: Path, run_dir: Path, name: str, settings: dict, steps: int,
                 job_state: slurm.JobState | None) -> GroupStatus:
    """One group's state (`job_state`: of its latest job, if any): the module docstring says what decides it."""
    try:
        state = folders.folder_state(run_dir, settings, steps)
    except ValueError as error:
        return GroupStatus(name, UNREADABLE, str(error))
    if state.kind == folders.FINISHED:
        return GroupStatus(name, DONE, f"{state.steps_done} updates per seed")
    job_text = f"job {job_state.job_id}" if job_state else ""
    holder = folders.lock_holder(run_dir)
    if holder is not None:
        return GroupStatus(name, RUNNING, f"trained by {holder}" + (f" ({job_text})" if job_text else ""))
    if job_state and job_state.state in slurm.WAITING_STATES:
        return GroupStatus(name, QUEUED, f"{job_text} {job_state.state}")
    if job_state and job_state.state == "RUNNING":
        return GroupStatus(name, RUNNING, f"{job_text} running, its run not started yet")
    log_path = log_path_for(out, run_dir)
    attempt = last_attempt(log_path)
    stopped_by_signal = attempt is not None and attempt.exit_status in INTERRUPTED
    interrupted = f"interrupted (exit status {attempt.exit_status}); " if stopped_by_signal else ""
    if attempt and attempt.exit_status not in (None, 0, store.EXIT_BUSY) and not interrupted:
        return GroupStatus(name, FAILED, f"exit status {attempt.exit_status}: {attempt.last_line or '(no output)'} "
                                         f"(log: {log_path})")
    if job_state and job_state.state != "UNKNOWN":
        return GroupStatus(name, FAILED, f"{job_text} ended ({job_state.state}) before its run finished "
                                         f"(submitit's log: {job_state.log}; log: {log_path})")
    if state.kind == folders.RESUMABLE:
        return GroupStatus(name, STOPPED, f"{interrupted}resumable from its checkpoint"
                                          + (f" (log: {log_path})" if attempt else ""))
    if state.kind == folders.UNSTARTED or (stopped_by_signal and state.kind == folders.NEW):
        return GroupStatus(name, STOPPED, f"{interrupted}stopped before its first checkpoint: starts again")
    if state.kind == folders.CONFLICT:
        return GroupStatus(name, CONFLICT, state.detail)
    return GroupStatus(name, NOT_STARTED, "")


def status_text(out: Path, statuses: list[GroupStatus]) -> str:
    """One line per group (folder, state, detail), then the count of groups in each state."""
    width = max((len(s.folder) for s in statuses), default=0)
    lines = [f"{s.folder.ljust(width)}  {s.state.ljust(len(NOT_STARTED))}  {s.detail}".rstrip() for s in statuses]
    counts = Counter(s.state for s in statuses)
    summary = ", ".join(f"{counts[state]} {state}" for state in STATES if counts[state])
    lines.append(f"{len(statuses)} group{'s' * (len(statuses) != 1)} in {out}: {summary or 'none'}")
    return "\n".join(lines)
