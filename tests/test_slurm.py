"""`drol-diag sweep --executor slurm` through submitit, on submitit's local executor (real submitit jobs, each a
process on this machine, signalled, checkpointed and requeued as on SLURM): a 2-group sweep in which one
job is stopped mid-run and resumes from its checkpoint to the numbers of the uninterrupted small sweep;
`sweep --status`; bad input."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import replace

import pytest

from ablations import executors, gpus, grid, slurm
from ablations.sweep import plan_sweep
from ablations.tables import plan_text
from drol_diag.runfolder import folders, store
from tests.helpers import SMALL_SWEEP, WAIT_S, assert_same_results, invoke, start_cli, wait_until
from tests.test_bad_input import assert_refused, files_under
from training.memory import GIB

pytest.importorskip("submitit")

PAIR = list(SMALL_SWEEP)
PAIR[PAIR.index("--k") + 1] = "2"  # two of the small sweep's groups: dynamic and static-routing at K=2
GROUPS = ("modes-2d/dynamic-k2", "modes-2d/static-routing-k2")
DYNAMIC = list(PAIR)
DYNAMIC[DYNAMIC.index("--ablations") + 1] = "dynamic"  # one of them: the group that is stopped and resumes
ON_LOCAL_SUBMITIT = ("--executor", "slurm", "--slurm-cluster", "local")


def status_rows(stdout: str) -> dict[str, tuple[str, str]]:
    """`sweep --status` output: {run folder: (state, detail)} of its group lines."""
    rows = [re.split(r"\s{2,}", line, maxsplit=2) for line in stdout.splitlines()[:-1]]
    return {row[0]: (row[1], row[2] if len(row) > 2 else "") for row in rows}


def parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def command_line(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


def test_a_stopped_job_requeues_and_resumes_to_the_uninterrupted_results(small_sweep, tmp_path):
    out = tmp_path / "out"
    stopped = out / GROUPS[0]
    process = start_cli("sweep", *DYNAMIC, "--out", str(out), "--no-progress", *ON_LOCAL_SUBMITIT,
                        "--partition", "debug", "--time-limit", "60", "--memory-gb", "4", "--array-parallelism", "2")
    run_pid = None
    try:
        # As soon as the group's run has written a checkpoint, freeze it (mid-run) and signal its job as SLURM
        # does at the time limit or a preemption (USR2 to the job's process, submitit's signal).
        assert wait_until(lambda: (stopped / store.CHECKPOINT_FILE).exists() or process.poll() is not None,
                          WAIT_S, 0.01), f"no checkpoint of {stopped} in {WAIT_S} s"
        holder = folders.lock_holder(stopped)
        assert holder is not None, "the run ended before it could be stopped"
        run_pid = int(holder.split()[1])
        os.kill(run_pid, signal.SIGSTOP)
        assert not (stopped / store.SUMMARY_FILE).exists(), "the run finished before it could be stopped"
        job_pid = parent_pid(run_pid)
        assert "submitit" in command_line(job_pid)  # the run is a child of the submitit job, as on a SLURM node
        running = invoke("sweep", "--status", str(out))
        assert running.exit_code == 0, running.output
        state, detail = status_rows(running.stdout)[GROUPS[0]]
        assert state == "running" and detail.startswith(f"trained by {holder} (job "), detail
        os.kill(job_pid, signal.SIGUSR2)
        stdout, stderr = process.communicate(timeout=WAIT_S)
    finally:
        if process.poll() is None:  # (the test failed: leave no frozen run holding its folder)
            process.kill()
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(run_pid, signal.SIGKILL)
    assert process.returncode == 0, stdout + stderr
    assert stdout.count(" done ") == 1 and "one job per group in partition debug" in stdout, stdout
    assert_same_results(out, small_sweep, GROUPS[:1])

    log = (out / "logs" / f"{GROUPS[0]}.log").read_text()
    attempts = log.split(executors.ATTEMPT_HEADER)[1:]
    assert len(attempts) == 2 and "=== exit status" not in attempts[0]  # the stopped attempt, killed with its job
    assert attempts[1].splitlines()[0].endswith("--resume") and "=== exit status 0" in attempts[1]
    jobs = slurm.read_jobs(out)
    assert sorted(jobs) == list(GROUPS[:1]) and {job["cluster"] for job in jobs.values()} == {"local"}
    job_folder = out / slurm.SUBMITIT_DIR / jobs[GROUPS[0]]["job_id"]
    submitit_log = "".join(path.read_text() for path in job_folder.glob("*_log.*"))
    assert "Caught signal SIGUSR2" in submitit_log and "Requeued job" in submitit_log
    recorded = grid.read_sweep_file(out / grid.SWEEP_FILE)  # the SLURM settings, for a rerun with --from
    assert (recorded["partition"], recorded["time-limit"], recorded["array-parallelism"]) == ("debug", 60, 2)

    done = invoke("sweep", "--status", str(out))
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[-1] == f"1 group in {out}: 1 done"
    assert status_rows(done.stdout) == {GROUPS[0]: ("done", "300 updates per seed")}


def test_status_shows_every_group_state_and_changes_nothing(small_sweep, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(small_sweep, out, symlinks=True)
    spec = grid.spec_from_values(grid.read_sweep_file(out / grid.SWEEP_FILE), {"k": "2,4,8"})
    grid.write_sweep_file(out / grid.SWEEP_FILE, spec)  # K=8 added: two groups never started
    for group in ("dynamic-k4", "static-routing-k2", "static-routing-k4"):  # not finished: a checkpoint, no summary
        (out / "modes-2d" / group / store.SUMMARY_FILE).unlink()
    failed_log = out / "logs/modes-2d/static-routing-k4.log"
    with open(failed_log, "a") as log:  # its last attempt failed
        log.write(f"{executors.ATTEMPT_HEADER} 2026-01-01T00:00:00 on node7, cores 0: drol-diag run ...\n"
                  "error: the data went missing\n=== exit status 2 after 3.0 s\n")
    (out / slurm.SUBMITIT_DIR).mkdir()  # a job of submitit's local executor that ended without a result:
    store.write_json_atomic(out / slurm.SUBMITIT_DIR / slurm.JOBS_FILE, {"modes-2d/dynamic-k8": {
        "job_id": str(os.getpid() + 10**7), "cluster": "local", "submitted": time.strftime("%Y-%m-%dT%H:%M:%S")}})
    with store.run_lock(out / "modes-2d/dynamic-k4"):  # this process trains it; static-routing-k2 stopped
        before = files_under(out)
        result = invoke("sweep", "--status", str(out))
        assert files_under(out) == before
    assert result.exit_code == 0, result.output
    rows = status_rows(result.stdout)
    job = slurm.read_jobs(out)["modes-2d/dynamic-k8"]["job_id"]
    expected = {  # one line per group, in grid order
        "modes-2d/dynamic-k2": ("done", "300 updates per seed"),
        "modes-2d/dynamic-k4": ("running", f"trained by pid {os.getpid()} on {os.uname().nodename}"),
        "modes-2d/dynamic-k8": ("failed", f"job {job} ended (FAILED) before its run finished (submitit's log: "
                                          f"{out / slurm.SUBMITIT_DIR / job / f'{job}_0_log.err'}; log: "
                                          f"{out / 'logs/modes-2d/dynamic-k8.log'})"),
        "modes-2d/static-routing-k2": ("stopped", "resumable from its checkpoint (log: "
                                                  f"{out / 'logs/modes-2d/static-routing-k2.log'})"),
        "modes-2d/static-routing-k4": ("failed", f"exit status 2: error: the data went missing (log: {failed_log})"),
        "modes-2d/static-routing-k8": ("not started", ""),
    }
    assert rows == expected and list(rows) == list(expected)
    assert result.stdout.splitlines()[-1] == f"6 groups in {out}: 1 done, 1 running, 2 failed, 1 stopped, 1 not started"


def test_status_calls_a_group_interrupted_by_ctrl_c_stopped_not_failed(small_sweep, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(small_sweep, out, symlinks=True)
    for group, status in (("dynamic-k4", 130), ("static-routing-k2", -signal.SIGINT), ("static-routing-k4", 143)):
        (out / "modes-2d" / group / store.SUMMARY_FILE).unlink()  # stopped mid-run: a checkpoint, no summary
        with open(out / f"logs/modes-2d/{group}.log", "a") as log:
            log.write(f"{executors.ATTEMPT_HEADER} 2026-01-01T00:00:00 on node7, cores 0: drol-diag run ...\n"
                      f"interrupted: training stopped\n=== exit status {status} after 3.0 s\n")
    (out / "modes-2d/static-routing-k4" / store.CHECKPOINT_FILE).unlink()  # stopped before its first checkpoint
    rows = status_rows(invoke("sweep", "--status", str(out)).stdout)
    logs = {group: out / f"logs/modes-2d/{group}.log" for group in ("dynamic-k4", "static-routing-k2")}
    assert rows == {
        "modes-2d/dynamic-k2": ("done", "300 updates per seed"),
        "modes-2d/dynamic-k4": ("stopped", "interrupted (exit status 130); resumable from its checkpoint "
                                           f"(log: {logs['dynamic-k4']})"),
        "modes-2d/static-routing-k2": ("stopped", f"interrupted (exit status {-signal.SIGINT}); resumable from its "
                                                  f"checkpoint (log: {logs['static-routing-k2']})"),
        "modes-2d/static-routing-k4": ("stopped", "interrupted (exit status 143); stopped before its first "
                                                  "checkpoint: starts again")}


def test_each_group_job_asks_slurm_for_what_the_options_say(tmp_path, monkeypatch):
    from submitit.slurm.slurm import _make_sbatch_string

    for tool in ("sbatch", "srun"):  # (SLURM is not installed here: submitit only checks that they are on PATH)
        (tmp_path / tool).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    file_values = {"partition": "gpu", "time-limit": 120, "memory-gb": 32, "array-parallelism": 2, "gpus-per-group": 1}
    spec = grid.spec_from_values(file_values, {})  # (as a sweep file gives them)
    settings = slurm.slurm_settings(spec, tmp_path / "out", threads=4)
    executor = slurm.make_executor(settings)._executor
    assert executor.max_num_timeout == slurm.MAX_TIMEOUTS
    # The sbatch script submitit writes for an array of 5 groups with these parameters:
    script = _make_sbatch_string(command="python -m submitit.core._submit", folder=executor.folder, map_count=5,
                                 **executor.parameters).splitlines()
    for line in ("--partition=gpu", "--time=120", "--cpus-per-task=4", "--gpus-per-node=1", "--mem=32GB",
                 "--array=0-4%2", "--nodes=1", "--ntasks-per-node=1", "--job-name=drol-diag", "--signal=USR2@90"):
        assert f"#SBATCH {line}" in script, (line, script)
    assert executor.folder == (tmp_path / "out" / slurm.SUBMITIT_DIR / "%j").absolute()


def test_the_plan_checks_memory_against_sinfo_or_says_why_not_and_status_asks_sacct_once(tmp_path, monkeypatch):
    # No SLURM here: sinfo and sacct on PATH print what SLURM would (as sbatch and srun above), and log their calls.
    calls = tmp_path / "calls"
    for tool, output in (("sinfo", "debug* 16000+\\ndebug* 8000\\ngpu 512000\\n"),
                         ("sacct", "JobID|State|NodeList\\n71_0|RUNNING|n1\\n71_1|CANCELLED by 5|\\n")):
        (tmp_path / tool).write_text(f"#!/bin/sh\necho {tool} \"$@\" >> {calls}\nprintf '{output}'\n")
        (tmp_path / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    spec = grid.spec_from_values({"tasks": "modes-2d", "seeds": [0], "k": [100000]}, {})  # (too big for any machine)
    assert slurm.job_memory(spec) == (8000 * gpus.MIB, "the smallest node of the default partition has (sinfo)")
    assert slurm.job_memory(replace(spec, partition="gpu"))[0] == 512000 * gpus.MIB
    assert slurm.job_memory(replace(spec, memory_gb=4.0)) == (4 * GIB, "each job asks for (--memory-gb)")
    assert slurm.job_memory(replace(spec, slurm_cluster="local")) is None  # (its jobs run on this machine)
    assert slurm.job_memory(replace(spec, gpus_per_group=1.0)) == "the jobs' GPUs are on the cluster's nodes"
    unknown = slurm.job_memory(replace(spec, partition="cpu"))
    assert unknown == "sinfo reports no memory for partition cpu"
    with pytest.raises(ValueError, match="GiB the smallest node of the default partition has"):
        plan_sweep(spec, tmp_path / "out", available=slurm.job_memory(spec))
    plan = plan_sweep(spec, tmp_path / "out", available=unknown)  # (not judged against this machine's memory)
    assert "note: memory not checked by the plan: sinfo reports no memory for partition cpu; each run checks its " \
           "own" in plan_text(plan, "")
    (tmp_path / "sinfo").unlink()
    assert slurm.job_memory(spec) == "sinfo cannot tell the memory of the default partition's nodes"
    jobs = {f"modes-2d/dynamic-k{k}": {"job_id": f"71_{i}", "cluster": "slurm"} for i, k in enumerate((2, 4))}
    calls.unlink()
    states = slurm.job_states(tmp_path, jobs)
    assert [(s.job_id, s.state) for s in states.values()] == [("71_0", "RUNNING"), ("71_1", "CANCELLED")]
    assert calls.read_text().splitlines() == ["sacct -o JobID,State,NodeList --parsable2 -j 71"]  # one call, all jobs
    (tmp_path / "sacct").unlink()
    assert {s.state for s in slurm.job_states(tmp_path, jobs).values()} == {"UNKNOWN"}


@pytest.mark.parametrize("args, phrase", [
    (["--partition", "gpu"], "--partition applies to --executor slurm only (this sweep: local)"),
    (["--executor", "ray", "--time-limit", "60", "--memory-gb", "8"], "--time-limit, --memory-gb apply to --executor "
                                                                       "slurm only"),
    (["--executor", "slurm"], "no sbatch or srun on this machine's PATH"),
    ([*ON_LOCAL_SUBMITIT, "--gpus-per-group", "0.5"], "whole number of GPUs"),
    ([*ON_LOCAL_SUBMITIT, "--time-limit", "0"], "--time-limit must be at least 1"),
    ([*ON_LOCAL_SUBMITIT, "--array-parallelism", "0"], "--array-parallelism must be a positive integer"),
    ([*ON_LOCAL_SUBMITIT, "--memory-gb", "0"], "--memory-gb must be positive, got 0"),
    (["--executor", "slurm", "--slurm-cluster", "pbs"], "unknown --slurm-cluster 'pbs'; valid: slurm, local"),
    ([*ON_LOCAL_SUBMITIT, "--jobs", "2"], "--jobs applies to --executor local"),
])
def test_bad_slurm_settings_are_one_line_exit_2_and_write_nothing(tmp_path, monkeypatch, args, phrase):
    monkeypatch.setenv("PATH", str(tmp_path))  # (no sbatch here, whatever this machine has)
    assert_refused(invoke("sweep", *PAIR, "--out", str(tmp_path / "out"), *args), phrase)
    assert not (tmp_path / "out").exists()


def test_slurm_without_submitit_and_status_of_no_sweep_are_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # `import submitit` raises ImportError
    assert_refused(invoke("sweep", *PAIR, "--out", str(tmp_path / "out"), *ON_LOCAL_SUBMITIT),
                   "pip install 'drol-diag[slurm]'")
    assert not (tmp_path / "out").exists()
    assert_refused(invoke("sweep", "--status", str(tmp_path)), "holds no sweep.toml")
    assert_refused(invoke("sweep", "--status", str(tmp_path), "--k", "2"), "--status takes no other sweep settings")
