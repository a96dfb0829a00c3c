"""The SLURM executor: one job-array element per group, submitted through submitit (docs/gpu-and-clusters.md,
"SLURM"). On a time limit or preemption a job's `checkpoint` requeues the same group, which `run_group` resumes
from its run folder; `cluster="local"` runs the jobs as processes on this machine (for trying it, and the tests).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ablations.executors import FAILED, GroupJob, GroupOutcome, guarded, import_optional
from ablations.gpus import MIB
from ablations.grid import SweepSpec
from drol_diag.runfolder import store
from drol_diag.runfolder.folders import read_record
from training.memory import GIB

SUBMITIT_DIR = ".submitit"  # <out>/.submitit/<job id>/: submitit's files for each job
JOBS_FILE = "jobs.json"  # <out>/.submitit/jobs.json: {run folder (relative to <out>): its latest job}
CLUSTERS = ("slurm", "local")  # where submitit sends the jobs: sbatch, or processes on this machine
DEFAULT_TIME_LIMIT_MIN = 240
MAX_TIMEOUTS = 10  # times a group's job may hit its time limit (and requeue) before it fails
JOB_NAME = "drol-diag"
POLL_S = {"slurm": 30.0, "local": 0.5}  # between looks at the jobs' states while waiting for them
# The sweep settings (drol_diag.settings.options, destination "executor") that only this executor reads.
SLURM_OPTIONS = ("partition", "time_limit", "memory_gb", "array_parallelism", "slurm_cluster")
SUBMITIT_MISSING = "--executor slurm needs submitit: pip install 'drol-diag[slurm]' (or pip install 'submitit>=1.5')"
SINFO_TIMEOUT_S = 30
# SLURM job states (sacct) in which a job waits to run again or for the first time.
WAITING_STATES = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESIZING", "SUSPENDED",
                  "PREEMPTED")


@dataclass(frozen=True)
class SlurmSettings:
    """What each group's job asks SLURM for, and where submitit keeps its files."""

    folder: str  # <out>/.submitit
    cluster: str  # one of CLUSTERS
    partition: str | None  # None: the cluster's default partition
    time_limit: int  # minutes (sbatch --time)
    cpus: int  # cores per group (sbatch --cpus-per-task; the run is pinned to them)
    gpus: int  # GPUs per group (sbatch --gpus-per-node)
    memory_gb: float | None  # sbatch --mem (None: the partition's default)
    array_parallelism: int | None  # groups running at once (the array's %N; None: all)


def check_executor_options(executor: str, spec: SweepSpec) -> None:
    """Raise ValueError (one line) when the sweep gives SLURM settings to another executor."""
    named = [f"--{name.replace('_', '-')}" for name in SLURM_OPTIONS if getattr(spec, name) is not None]
    if executor != "slurm" and named:
        them = "it" if len(named) == 1 else "them"
        raise ValueError(f"{', '.join(named)} appl{'ies' if len(named) == 1 else 'y'} to --executor slurm only "
                         f"(this sweep: {executor}); pass --executor slurm, or leave {them} out (of the sweep file "
                         "too)")


def slurm_settings(spec: SweepSpec, out: Path, threads: int) -> SlurmSettings:
    """The jobs' settings from the sweep's, each group pinned to `threads` cores. Raises ValueError (one line) for
    bad values (--memory-gb: job_memory checks it), a missing submitit, or no sbatch to submit with."""
    cluster = spec.slurm_cluster or "slurm"
    if cluster not in CLUSTERS:
        raise ValueError(f"unknown --slurm-cluster {cluster!r}; valid: {', '.join(CLUSTERS)}")
    time_limit = DEFAULT_TIME_LIMIT_MIN if spec.time_limit is None else spec.time_limit
    if time_limit < 1:
        raise ValueError(f"--time-limit must be at least 1 (minutes), got {time_limit}")
    gpus = spec.gpus_per_group or 0  # (not negative: gpus.check_executor_gpus)
    if gpus != int(gpus):
        raise ValueError(f"--gpus-per-group must be a whole number of GPUs for --executor slurm, got {gpus:g}")
    if spec.array_parallelism is not None and spec.array_parallelism < 1:
        raise ValueError(f"--array-parallelism must be a positive integer, got {spec.array_parallelism}")
    if spec.partition is not None and not spec.partition.strip():
        raise ValueError("--partition is empty; name a partition (sinfo lists them), or leave it out for the default")
    import_optional("submitit", SUBMITIT_MISSING)
    missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
    if cluster == "slurm" and missing:
        raise ValueError(f"--executor slurm: no {' or '.join(missing)} on this machine's PATH; run the sweep on a "
                         "machine that submits to the cluster (its login node), or pass --slurm-cluster local to try "
                         "it on this machine")
    return SlurmSettings(str(Path(out).absolute() / SUBMITIT_DIR), cluster, spec.partition, time_limit, threads,
                         int(gpus), spec.memory_gb, spec.array_parallelism)


def job_memory(spec: SweepSpec) -> tuple[int, str] | str | None:
    """The memory a group's job has, for the plan's check: (bytes, what they are), None (this machine's), or why
    it is not known here (each run checks on its node). ValueError (one line) for a --memory-gb not positive."""
    if spec.memory_gb is not None and spec.memory_gb <= 0:
        raise ValueError(f"--memory-gb must be positive, got {spec.memory_gb:g}")
    if spec.memory_gb is not None and not spec.gpus_per_group:
        return int(spec.memory_gb * GIB), "each job asks for (--memory-gb)"
    if spec.slurm_cluster == "local":
        return None  # (its jobs run on this machine)
    return "the jobs' GPUs are on the cluster's nodes" if spec.gpus_per_group else partition_memory(spec.partition)


def partition_memory(partition: str | None) -> tuple[int, str] | str:
    """(bytes, what they are) of the smallest node sinfo reports in `partition` (None: the default), or why not."""
    where = f"partition {partition}" if partition else "the default partition"
    try:
        lines = subprocess.run(["sinfo", "--noheader", "--format=%P %m"], capture_output=True, text=True,
                               timeout=SINFO_TIMEOUT_S, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return f"sinfo cannot tell the memory of {where}'s nodes"
    rows = [line.split() for line in lines if len(line.split()) == 2]
    sizes = [int(size.rstrip("+")) for name, size in rows if size.rstrip("+").isdigit()
             and (name.rstrip("*") == partition if partition else name.endswith("*"))]  # (%m: MB; 9000+: at least)
    if not sizes:
        return f"sinfo reports no memory for {where}"
    return min(sizes) * MIB, f"the smallest node of {where} has (sinfo)"


def describe(settings: SlurmSettings) -> str:
    """The executor's line of the sweep plan."""
    asked = [f"{settings.cpus} CPU(s)", f"{settings.gpus} GPU(s)", f"{settings.time_limit} min"]
    asked += [f"{settings.memory_gb:g} GB"] if settings.memory_gb is not None else []
    where = f"partition {settings.partition}" if settings.partition else "the default partition"
    at_once = f"{settings.array_parallelism} at a time" if settings.array_parallelism else "all at once"
    backend = "" if settings.cluster == "slurm" else " (submitit's local executor: processes on this machine)"
    return (f"executor slurm{backend}: one job per group in {where}, each asking for {', '.join(asked)}, "
            f"{at_once} (submitit's files: {settings.folder})")


# ------------------------------------------------------------------------------------------
# A group as a submitit job.


@dataclass(frozen=True)
class GroupTask:
    """The callable a group's job runs; on a time limit or preemption submitit requeues what `checkpoint` returns:
    the same group (submitit.helpers.Checkpointable's protocol, without importing submitit)."""

    job: GroupJob

    def __call__(self) -> GroupOutcome:
        # SLURM sends SIGTERM to every process of a job it preempts: the run ignores it (across exec) and trains on
        # until submitit's USR2 handler has requeued the job, or SIGKILL comes.
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            return guarded(self.job)
        finally:
            signal.signal(signal.SIGTERM, previous)

    def checkpoint(self) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(GroupTask(self.job))


def make_executor(settings: SlurmSettings) -> Any:
    """A submitit executor asking, for each job, what `settings` say."""
    submitit = import_optional("submitit", SUBMITIT_MISSING)
    executor = submitit.AutoExecutor(folder=Path(settings.folder) / "%j", cluster=settings.cluster,
                                     slurm_max_num_timeout=MAX_TIMEOUTS, local_max_num_timeout=MAX_TIMEOUTS)
    given = dict(gpus_per_node=settings.gpus or None, mem_gb=settings.memory_gb,
                 slurm_partition=settings.partition or None, slurm_array_parallelism=settings.array_parallelism)
    executor.update_parameters(name=JOB_NAME, timeout_min=settings.time_limit, nodes=1, tasks_per_node=1,
                               cpus_per_task=settings.cpus, **{k: v for k, v in given.items() if v is not None})
    return executor


def run_slurm(settings: SlurmSettings, jobs: list[GroupJob],
              on_done: Callable[[GroupJob, GroupOutcome], None]) -> list[GroupOutcome]:
    """Submit the groups as one job array, record them (jobs.json), and wait, calling on_done as each ends."""
    if not jobs:
        return []
    executor = make_executor(settings)
    submitted = executor.submit_array([GroupTask(job) for job in jobs])
    record_jobs(settings, jobs, [job.job_id for job in submitted])
    outcomes: list[GroupOutcome | None] = [None] * len(jobs)
    pending = dict(enumerate(submitted))
    while pending:
        for i, job in list(pending.items()):
            if job.done():
                outcomes[i] = job_outcome(job)
                del pending[i]
                on_done(jobs[i], outcomes[i])
        if pending:
            time.sleep(POLL_S[settings.cluster])
    return outcomes


def job_outcome(job: Any) -> GroupOutcome:
    """A finished job's GroupOutcome; FAILED with its error and log when it returned none (killed, out of time)."""
    try:
        return job.result()
    except Exception as error:  # noqa: BLE001  (submitit's UncompletedJobError, FailedJobError, ...)
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return GroupOutcome(FAILED, error=f"job {job.job_id}: {lines[-1] if lines else type(error).__name__} "
                                          f"(submitit's log: {job.paths.stderr})")


# ------------------------------------------------------------------------------------------
# Which job runs which group, for `drol-diag sweep --status`.


def record_jobs(settings: SlurmSettings, jobs: list[GroupJob], job_ids: list[str]) -> None:
    """Add the jobs to <out>/.submitit/jobs.json (atomically), keyed by run folder relative to <out>."""
    path = Path(settings.folder) / JOBS_FILE
    records = read_jobs(Path(settings.folder).parent)
    submitted = datetime.now().isoformat(timespec="seconds")
    for job, job_id in zip(jobs, job_ids):
        key = os.path.relpath(job.run_dir, Path(settings.folder).parent)
        records[key] = {"job_id": job_id, "cluster": settings.cluster, "submitted": submitted}
    path.parent.mkdir(parents=True, exist_ok=True)
    store.write_json_atomic(path, records)


def read_jobs(out: Path) -> dict[str, dict[str, str]]:
    """<out>/.submitit/jobs.json ({} when none). ValueError (one line) if unreadable."""
    return read_record(Path(out) / SUBMITIT_DIR / JOBS_FILE) or {}


@dataclass(frozen=True)
class JobState:
    """A submitted job as the scheduler (or this machine, for local jobs) sees it."""

    job_id: str
    state: str  # SLURM's job state (sacct): PENDING, RUNNING, COMPLETED, FAILED, ...; UNKNOWN if not known
    log: Path  # submitit's stderr of the job


def job_states(out: Path, records: dict[str, dict[str, str]]) -> dict[str, JobState]:
    """The states of read_jobs' records, by the same keys: a local job's from its process and result, SLURM jobs'
    from one sacct call through submitit's watcher (UNKNOWN where submitit or sacct is missing)."""
    if not records:
        return {}  # (no submitit import: on import it binds its log handler to this moment's stderr)
    folder = Path(out) / SUBMITIT_DIR / "%j"
    try:
        submitit = import_optional("submitit", SUBMITIT_MISSING)
    except ValueError:
        return {key: JobState(r["job_id"], "UNKNOWN", folder.parent / r["job_id"]) for key, r in records.items()}
    watcher = submitit.slurm.slurm.SlurmInfoWatcher()
    for record in records.values():
        if record.get("cluster") != "local":
            watcher.register_job(record["job_id"])
    logger = logging.getLogger("submitit")  # (it warns on stderr when sacct is missing or fails: folders still tell)
    disabled, logger.disabled = logger.disabled, True
    with contextlib.suppress(Exception):
        watcher.update()  # (one sacct for every job: those of one array by the array's id)
    logger.disabled = disabled
    states = {}
    for key, record in records.items():
        job_id = record["job_id"]
        paths = submitit.core.utils.JobPaths(folder, job_id=job_id, task_id=0)
        if record.get("cluster") == "local":
            state = "RUNNING" if local_job_alive(job_id) else "COMPLETED" if paths.result_pickle.exists() else "FAILED"
        else:
            state = watcher.get_state(job_id, mode="cache").split()[0]
        states[key] = JobState(job_id, state, paths.stderr)
    return states


def local_job_alive(job_id: str) -> bool:
    """Whether a local job's controller (submitit's job id: its process id) still runs."""
    try:
        with open(f"/proc/{int(job_id)}/cmdline", "rb") as f:
            return b"submitit" in f.read()
    except (OSError, ValueError):
        return False
