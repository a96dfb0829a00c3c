"""Running groups: each group is one `drol-diag run` subprocess, pinned to cores of its own and logged to
<out>/logs/<task>/<ablation>-k<K>.log, on this machine (`run_local`) or on Ray (`run_ray`), through `run_group`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib
import os
import queue
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ablations.gpus import MEMORY_FRACTION, VISIBLE_DEVICES, GpuSlot, ray_slot, slot_layout
from drol_diag.runfolder import folders, store

DONE, SKIPPED, FAILED, ELSEWHERE = "done", "skipped", "failed", "running-elsewhere"  # a group's outcome
ATTEMPT_HEADER = "=== attempt"  # starts the line a log gets before each attempt
LOG_TAIL_BYTES = 65536  # how much of a group log's end is read (its last line, its last attempt)
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): signal the child when its parent dies
# libc's prctl, looked up here: a forked child must not call dlsym (another thread may hold its lock)
PRCTL = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None


@dataclass(frozen=True)
class GroupJob:
    """What a worker needs to run one group (plain values: it travels to Ray workers)."""

    name: str  # "<task> <ablation> K=<K>", for messages
    run_dir: str  # <out>/<task>/<ablation>-k<K>
    log_path: str  # <out>/logs/<task>/<ablation>-k<K>.log
    arguments: tuple[str, ...]  # drol-diag run options, without --resume/--force
    expected: dict[str, Any]  # folders.settings_record of the group's resolved configs
    steps: int  # updates per seed the run must reach
    threads: int  # cores the run is pinned to
    force: bool  # restart a run folder whose settings differ (else the group fails)
    slot: GpuSlot | None = None  # on GPUs: the environment the run gets (its GPU: a local slot's, or Ray's choice)


@dataclass(frozen=True)
class GroupOutcome:
    """How one attempt at a group ended."""

    status: str  # DONE, SKIPPED, FAILED or ELSEWHERE
    wall_s: float | None = None  # seconds the run took (None: not run)
    error: str = ""  # FAILED: the last line of the log (or why); ELSEWHERE: who holds the lock
    exit_status: int | None = None  # the run's exit status (None: not run)
    gpus: tuple[str, ...] = ()  # the GPUs its process was given (a local GPU slot's, or Ray's ray.get_gpu_ids())


# An executor bound to its settings: runner(jobs, on_done) runs the jobs, calls on_done(job, outcome) as
# each ends, and returns the outcomes in job order (run_local with its workers, run_ray with its Ray).
Runner = Callable[[list[GroupJob], Callable[[GroupJob, GroupOutcome], None]], list[GroupOutcome]]


def run_group(job: GroupJob) -> GroupOutcome:
    """Skip a finished group, leave one another process holds, else run it (--resume, or --force for a folder
    of other settings when job.force), deciding from its run folder at launch; never raises for a failed run."""
    run_dir = Path(job.run_dir)
    holder = folders.lock_holder(run_dir)
    if holder is not None:
        return GroupOutcome(ELSEWHERE, error=holder)
    state = folders.folder_state(run_dir, job.expected, job.steps)
    if state.kind == folders.FINISHED:
        return GroupOutcome(SKIPPED)
    if state.kind == folders.CONFLICT and not job.force:
        return GroupOutcome(FAILED, error=f"{run_dir}: {state.detail}; pass --force to start it again")
    flag = "--resume" if state.kind in (folders.NEW, folders.RESUMABLE) else "--force"  # (--resume of NEW: a fresh run)
    command = [sys.executable, "-m", "cli", "run", *job.arguments, flag]
    outcome = run_logged(command, Path(job.log_path), job.threads, job.slot)
    if outcome.exit_status == store.EXIT_BUSY:  # another process got the lock first, after our check
        return GroupOutcome(ELSEWHERE, outcome.wall_s, folders.lock_holder(run_dir) or "another process")
    return outcome


def run_logged(command: list[str], log_path: Path, threads: int, slot: GpuSlot | None = None) -> GroupOutcome:
    """Run `command` pinned to `threads` cores (and a GPU `slot`), its output appended to `log_path` between a
    header and an exit line: DONE on exit status 0, else FAILED with the output's last line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    environment = slot.apply(os.environ) if slot is not None else dict(os.environ)
    shown = [f"{name}={environment[name]}" for name in (VISIBLE_DEVICES, MEMORY_FRACTION)
             if slot is not None and name in environment]
    on_gpu = f", {' '.join(shown)}" if shown else ""
    with claim_cores(threads) as cores, open(log_path, "a") as log:
        log.write(f"{ATTEMPT_HEADER} {datetime.now().isoformat(timespec='seconds')} on {os.uname().nodename}, "
                  f"cores {','.join(map(str, cores))}{on_gpu}: {shlex.join(command)}\n")
        log.flush()
        returncode = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env={**environment, "PYTHONUNBUFFERED": "1"},
                                    preexec_fn=lambda: pin_child(cores)).returncode
        wall = time.perf_counter() - started
        last = log_tail(log_path)[-1]  # (the header, at least)
        log.write(f"=== exit status {returncode} after {wall:.1f} s\n")
    return GroupOutcome(DONE if returncode == 0 else FAILED, wall, "" if returncode == 0 else last, returncode,
                        (slot.gpu,) if slot is not None and slot.gpu is not None else ())


def pin_child(cores: list[int]) -> None:
    """In the forked child: run on `cores` only, and die with the thread that started it (no run outlives a
    killed sweep holding its folder's lock). Linux only."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    if PRCTL is not None:
        PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


def log_tail(path: Path) -> list[str]:
    """The non-empty lines, stripped, of a text file's last LOG_TAIL_BYTES."""
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
        return [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]


@contextlib.contextmanager
def claim_cores(count: int) -> Iterator[list[int]]:
    """Hold `count` cores no other run on this machine holds (a lock file per core); if too few are free, share
    busy ones: a run always gets exactly `count` cores (the same thread count, hence the same results)."""
    available = sorted(os.sched_getaffinity(0))
    count = min(count, len(available))
    folder = Path(tempfile.gettempdir()) / f"drol-diag-cores-{os.getuid()}"  # (this machine's claims, per user)
    folder.mkdir(exist_ok=True)
    held = []
    try:
        for core in available:
            if len(held) == count:
                break
            handle = open(folder / f"core-{core}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append((core, handle))
            except BlockingIOError:
                handle.close()
        cores = [core for core, _ in held]
        yield cores + [core for core in available if core not in cores][:count - len(cores)]
    finally:
        for _, handle in held:
            handle.close()  # (closing releases the lock)


def guarded(job: GroupJob) -> GroupOutcome:
    """run_group, with an unexpected error (unreadable folder, no disk space) as a FAILED outcome."""
    try:
        return run_group(job)
    except Exception as error:  # noqa: BLE001  (one group's problem must not stop the others)
        return GroupOutcome(FAILED, error=f"{type(error).__name__}: {error}".splitlines()[0])


def worker_layout(executor: str, groups: int, jobs: int | None, threads: int | None,
                  slots: tuple[GpuSlot, ...] = ()) -> tuple[int, int]:
    """(groups at a time, cores per group): locally the cores shared out evenly (on GPU `slots`: slot_layout),
    never oversubscribed; on Ray and SLURM one core per group unless --threads. Raises ValueError (one line)."""
    if executor not in ("local", "ray", "slurm"):
        raise ValueError(f"unknown --executor {executor!r}; valid: local, ray, slurm")
    for option, value in (("--jobs", jobs), ("--threads", threads)):
        if value is not None and value < 1:
            raise ValueError(f"{option} must be a positive integer, got {value}")
    if executor in ("ray", "slurm"):
        if jobs is not None:
            raise ValueError("--jobs applies to --executor local; Ray runs as many groups at once as the cluster's "
                             "CPUs allow (each asks for --threads CPUs), SLURM as --array-parallelism allows")
        return max(1, groups), threads or 1
    cores = len(os.sched_getaffinity(0))
    if slots:
        return slot_layout(slots, jobs, threads, cores)
    jobs = jobs or max(1, min(groups, cores // (threads or 1)))
    threads = threads or max(1, cores // jobs)
    if jobs * threads > cores:
        raise ValueError(f"--jobs {jobs} x --threads {threads} needs {jobs * threads} cores and this machine has "
                         f"{cores}: lower --jobs or --threads")
    return jobs, threads


def run_local(jobs: list[GroupJob], on_done: Callable[[GroupJob, GroupOutcome], None],
              workers: int, slots: tuple[GpuSlot, ...] = ()) -> list[GroupOutcome]:
    """Run the groups on this machine, `workers` at a time; with GPU `slots` (gpus.gpu_slots), one group per slot
    at a time, each in the first free slot."""
    free: queue.SimpleQueue[GpuSlot] = queue.SimpleQueue()
    for slot in slots:
        free.put(slot)

    def in_a_slot(job: GroupJob) -> GroupOutcome:
        slot = free.get()  # (never waits: there are at most as many workers as slots)
        try:
            return guarded(replace(job, slot=slot))
        finally:
            free.put(slot)

    outcomes: list[GroupOutcome | None] = [None] * len(jobs)
    pool = ThreadPoolExecutor(max_workers=min(len(slots), max(1, workers)) if slots else max(1, workers))
    try:
        futures = {pool.submit(in_a_slot if slots else guarded, job): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            i = futures[future]
            outcomes[i] = future.result()
            on_done(jobs[i], outcomes[i])
    finally:  # (Ctrl-C: the groups not started yet never start; the running ones got the signal too)
        pool.shutdown(wait=True, cancel_futures=True)
    return outcomes


class GroupFailed(Exception):
    """Raised in a Ray task for a FAILED outcome, so that Ray retries it (max_retries)."""

    def __init__(self, outcome: GroupOutcome):
        super().__init__(outcome.error)
        self.outcome = outcome

    def __reduce__(self):
        return GroupFailed, (self.outcome,)


def run_group_or_raise(job: GroupJob) -> GroupOutcome:
    """The Ray task: guarded(job) with the GPUs Ray gave it, raising GroupFailed for a failed group."""
    import ray

    outcome = replace(guarded(job), gpus=tuple(map(str, ray.get_gpu_ids())))
    if outcome.status == FAILED:
        raise GroupFailed(outcome)
    return outcome


RAY_MISSING = "--executor ray needs Ray: pip install .[ray] (or pip install 'ray>=2.40')"
RAY_RETRIES = 1  # a failed group's Ray task runs once more (resuming from its checkpoint)


def import_optional(module: str, missing: str) -> Any:
    """An optional dependency's module; ValueError(`missing`: one line, how to install it) if it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(missing) from None


@contextlib.contextmanager
def ray_connection(address: str | None) -> Iterator[Any]:
    """Ray, connected: address None uses this process's, 'local' starts one here, 'auto' or HOST:PORT joins a
    cluster; shuts down only what it started. ValueError (one line) when Ray is missing or unreachable."""
    ray = import_optional("ray", RAY_MISSING)
    if address is None:
        if not ray.is_initialized():
            raise ValueError("Ray is not initialised in this process; pass --address auto, HOST:PORT or local")
        yield ray
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # Ray >= 2.5x may otherwise ask for an auth token
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        if address == "local":
            ray.init(num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False)
        else:
            ray.init(address=address)
    except Exception as error:  # noqa: BLE001  (Ray raises ConnectionError, RuntimeError, ValueError, ...)
        raise ValueError(f"cannot start or reach Ray at --address {address}: {str(error).splitlines()[0]}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def run_ray(ray: Any, jobs: list[GroupJob], on_done: Callable[[GroupJob, GroupOutcome], None],
            gpus_per_group: float = 0.0) -> list[GroupOutcome]:
    """Run the groups as Ray tasks (job.threads CPUs and `gpus_per_group` GPUs each; a failed one retried once)."""
    task = ray.remote(run_group_or_raise)
    slot = ray_slot(gpus_per_group)
    pending = {task.options(num_cpus=job.threads, num_gpus=gpus_per_group, max_retries=RAY_RETRIES,
                            retry_exceptions=True).remote(replace(job, slot=slot)): i
               for i, job in enumerate(jobs)}
    outcomes: list[GroupOutcome | None] = [None] * len(jobs)
    while pending:
        (ready,), _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(ready)
        try:
            outcomes[i] = ray.get(ready)
        except Exception as error:  # noqa: BLE001  (RayTaskError of GroupFailed, or a lost worker)
            cause = getattr(error, "cause", error)
            outcomes[i] = getattr(cause, "outcome", None) or GroupOutcome(FAILED, error=str(error).splitlines()[0])
        on_done(jobs[i], outcomes[i])
    return outcomes
