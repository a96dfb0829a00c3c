"""`drol-diag sweep`'s executors on groups of the session's finished sweep (tests/conftest.py's finished_sweep,
the uninterrupted reference; PAIR in test_sweep.py): a sweep killed mid-group resumes to the uninterrupted results,
two sweeps on one folder train each group once, a failed group does not stop the others, and the Ray executor gives
the local one's results, each group on the GPU Ray gave it. (Split from test_sweep.py so that the two halves can run
on two pytest workers.)"""

import signal
import time

import pytest

from ablations import executors
from ablations.sweep import execute, plan_sweep
from drol_diag.runfolder import folders, store
from tests.helpers import WAIT_S, assert_same_results, replace_option, start_cli, wait_until
from tests.test_sweep import GROUP_DIRS, PAIR, PAIR_SPEC, start_sweep, sweep, trainings_in_log

# The group a sweep is killed in and resumes: PAIR's first (one group: the kill and the resume are about it alone).
KILLED = replace_option("--ablations", "dynamic", PAIR)


def test_killed_sweep_resumes_to_the_results_of_an_uninterrupted_one(finished_sweep, tmp_path):
    out = tmp_path / "out"
    first = out / GROUP_DIRS[0]
    process = start_cli("sweep", *KILLED, "--out", str(out), "--no-progress", "--jobs", "1", "--threads", "1")
    wait_until(lambda: (first / store.CHECKPOINT_FILE).exists() or process.poll() is not None, WAIT_S, 0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert (first / store.CHECKPOINT_FILE).exists(), f"no checkpoint of {first} in {WAIT_S} s"
    assert not (first / store.SUMMARY_FILE).exists(), "the sweep finished its first group before the kill"
    assert wait_until(lambda: folders.lock_holder(first) is None), "its run outlived it"  # it dies with the sweep

    result = sweep(out, "--jobs", "1", "--threads", "1", grid_args=KILLED)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resume from its checkpoint" in result.stdout
    assert_same_results(out, finished_sweep, GROUP_DIRS[:1])
    log = (out / "logs" / f"{GROUP_DIRS[0]}.log").read_text()
    assert log.count(executors.ATTEMPT_HEADER) == 2  # the killed attempt, then the one that finished
    assert log.strip().splitlines()[-1].startswith("=== exit status 0")


def test_ctrl_c_starts_no_further_group(monkeypatch):
    started = []

    def run(job):
        started.append(job.name)
        time.sleep(0.2)  # (a group takes a while: the main thread hears Ctrl-C while the next one runs)
        return executors.GroupOutcome(executors.DONE)
    monkeypatch.setattr(executors, "guarded", run)

    def ctrl_c(job, outcome):  # (Ctrl-C reaches the sweep's main thread as the first group ends)
        raise KeyboardInterrupt
    jobs = [executors.GroupJob(f"group {i}", "", "", (), {}, 1, 1, False) for i in range(5)]
    with pytest.raises(KeyboardInterrupt):
        executors.run_local(jobs, ctrl_c, workers=1)
    assert started[0] == "group 0" and len(started) <= 2, started  # (the next may have started as the first ended)


def test_two_sweeps_on_one_folder_train_each_group_once(finished_sweep, tmp_path):
    out = tmp_path / "out"
    sweeps = [start_sweep(out, "--jobs", "1", "--threads", "1") for _ in range(2)]
    outputs = [process.communicate(timeout=WAIT_S) for process in sweeps]
    for process, (stdout, stderr) in zip(sweeps, outputs):
        assert process.returncode == 0, stdout + stderr
    assert all(trainings_in_log(out, group) == 1 for group in GROUP_DIRS)
    statuses = " ".join(stdout for stdout, _ in outputs)
    assert statuses.count(" done ") == 2 and "failed" not in statuses
    assert_same_results(out, finished_sweep, GROUP_DIRS)


def test_a_failed_group_does_not_stop_the_others_and_is_listed_with_its_log(tmp_path):
    data, task = tmp_path / "data", "cube-single-play-singletask-task2-v0"
    data.mkdir()
    for name in ("cube-single-play-v0.npz", "cube-single-play-v0-val.npz"):
        (data / name).write_bytes(b"not an npz archive")  # there (the sweep starts), but unreadable (the run fails)
    # (the group that runs on is not compared with anything: a third of the updates and no diagnostics, as a run
    # that still finishes; its training and evaluation programs those of PAIR, in the session's cache)
    grid_args = replace_option("--tasks", f"modes-2d,{task}", replace_option("--steps", "100", KILLED))
    result = sweep(tmp_path / "out", "--dataset-dir", str(data), "--no-diagnostics", "--jobs", "2", "--threads", "1",
                   grid_args=grid_args)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {line.split()[0]: line.split()[4] for line in result.stdout.splitlines()
            if line.startswith(("modes", "cube"))}  # task -> status in the final table
    assert rows == {"modes-2d": "done", task: "failed"}, result.stdout
    log = tmp_path / "out" / "logs" / task / "dynamic-k2.log"
    assert f"failed: {task} dynamic K=2: error: bad OGBench dataset file" in result.stdout
    assert f"(log: {log})" in result.stdout and "bad OGBench dataset file" in log.read_text()


def test_ray_executor_gives_the_results_of_the_local_one_each_group_on_the_gpu_ray_gave_it(finished_sweep, tmp_path,
                                                                                          monkeypatch):
    ray = pytest.importorskip("ray")
    for name, value in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}.items():
        monkeypatch.setenv(name, value)  # (Ray's workers, and the runs they start, inherit them)
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False)  # (logical GPUs: Ray needs no hardware for them)
    try:
        results = execute(plan_sweep(PAIR_SPEC, tmp_path / "out"), executor="ray", address=None, threads=1,
                          gpus_per_group=1)
    finally:
        ray.shutdown()
    assert [r.outcome.status for r in results] == ["done", "done"], [r.outcome for r in results]
    assert_same_results(tmp_path / "out", finished_sweep, GROUP_DIRS)  # (JAX on the CPU ignores CUDA_VISIBLE_DEVICES)
    # Both groups ran at once (2 CPUs, one each), so Ray gave each one of its two GPUs (ray.get_gpu_ids() in
    # the task), and set CUDA_VISIBLE_DEVICES to it, which the group's run process inherited and recorded.
    assert sorted(r.outcome.gpus for r in results) == [("0",), ("1",)], [r.outcome for r in results]
    for r in results:  # (and the memory fraction of a whole GPU: ablations.gpus.ray_slot)
        devices = store.read_json(r.planned.run_dir / store.CONFIG_FILE)["devices"]
        assert devices["environment"]["CUDA_VISIBLE_DEVICES"] == r.outcome.gpus[0], (r.planned.name, devices)
        assert devices["environment"]["XLA_CLIENT_MEM_FRACTION"] == "0.9", (r.planned.name, devices)
