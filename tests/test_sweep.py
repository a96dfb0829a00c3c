"""`drol-diag sweep`: grid expansion, skip and resume, kill safety, concurrent sweeps on one folder,
the Ray executor against the local one, bad input.

The finished sweep these tests compare with is the session's small sweep (tests/conftest.py, shared
with the report tests) extended by an fql group; the sweeps they run themselves are two of its groups."""

import shutil
import signal
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ablations import executors, folders, grid
from ablations.grid import Group, SweepSpec
from ablations.sweep import execute, job_for, plan_sweep
from drol_diag.runfolder import store
from tests.helpers import (
    SMALL_SWEEP,
    SMALL_SWEEP_GROUPS,
    WAIT_S,
    assert_same_results,
    invoke,
    run_cli,
    start_cli,
    wait_until,
)


def replace_option(option: str, value: str, grid_args: list[str] = SMALL_SWEEP) -> list[str]:
    """`grid_args` with `option` set to `value`."""
    args = list(grid_args)
    args[args.index(option) + 1] = value
    return args


# The small sweep and an fql group: 5 groups of three seeds, 300 updates, a checkpoint every 100.
GRID = replace_option("--ablations", "dynamic,static-routing,fql")
SPEC = SweepSpec(tasks=("modes-2d",), ablations=("dynamic", "static-routing", "fql"), k=(2, 4), seeds=(0, 1, 2),
                 steps=300, hidden=(8,), log_interval=100, eval_interval=100, checkpoint_interval=100,
                 eval_episodes=1, probes=64)
FINISHED_GROUPS = (*SMALL_SWEEP_GROUPS, "modes-2d/fql-k1")
# What the tests sweep again: two of those groups (dynamic K=2, fql).
PAIR = replace_option("--k", "2", replace_option("--ablations", "dynamic,fql"))
PAIR_SPEC = replace(SPEC, ablations=("dynamic", "fql"), k=(2,))
GROUP_DIRS = ("modes-2d/dynamic-k2", "modes-2d/fql-k1")



def sweep(out: Path, *extra: str, grid_args: list[str] = PAIR):
    """`drol-diag sweep` of `grid_args` into `out` in a subprocess, to its end."""
    return run_cli("sweep", *grid_args, "--out", str(out), "--no-progress", *extra)


def start_sweep(out: Path, *extra: str):
    return start_cli("sweep", *PAIR, "--out", str(out), "--no-progress", *extra)


def trainings_in_log(out: Path, group: str) -> int:
    """How many trainings of a group ran to the end (each prints its summary once into the log)."""
    return (out / "logs" / f"{group}.log").read_text().count("run folder: ")


@pytest.fixture(scope="module")
def finished(small_sweep, tmp_path_factory) -> Path:
    """A finished sweep of GRID: the small sweep's folder (copied), swept again with fql added (the 4 finished
    groups are skipped, fql trains)."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    shutil.copytree(small_sweep, out, symlinks=True)
    result = sweep(out, "--jobs", "2", "--threads", "1", grid_args=GRID)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("skipped") == len(SMALL_SWEEP_GROUPS) and result.stdout.count(" done ") == 1
    return out


def test_grid_expands_to_groups_of_all_seeds_with_fql_once_per_task(tmp_path):
    spec = grid.spec_from_values({}, dict(tasks="modes-2d,modes-5d", ablations="dynamic,soft-routing,fql",
                                          k="1,4,16,64", seeds="0-7", routing_temperature=0.5, bc_coef=3.0))
    groups = grid.expand(spec)
    seeds = tuple(range(8))
    assert groups == [Group(task, ablation, k, seeds) for task in ("modes-2d", "modes-5d")
                      for ablation, ks in (("dynamic", (1, 4, 16, 64)), ("soft-routing", (1, 4, 16, 64)),
                                           ("fql", (None,))) for k in ks]
    # Options reach only the groups they apply to.
    fql, soft = grid.run_arguments(spec, groups[8], tmp_path), grid.run_arguments(spec, groups[4], tmp_path)
    assert "--k" not in fql and "--bc-coef" not in fql and "--routing-temperature" not in fql
    assert soft[soft.index("--routing-temperature") + 1] == "0.5" and soft[soft.index("--k") + 1] == "1"
    assert "--routing-temperature" not in grid.run_arguments(spec, groups[0], tmp_path)
    # The sweep file round-trips, and command-line options override it.
    grid.write_sweep_file(tmp_path / "sweep.toml", spec)
    from_file = grid.read_sweep_file(tmp_path / "sweep.toml")
    assert grid.spec_from_values(from_file, {}) == spec
    assert grid.spec_from_values(from_file, {"k": "4", "seeds": None}).k == (4,)
    plan = plan_sweep(spec, tmp_path / "out")
    assert [p.run_dir.name for p in plan.groups[:9]] == [
        "dynamic-k1", "dynamic-k4", "dynamic-k16", "dynamic-k64", "soft-routing-k1", "soft-routing-k4",
        "soft-routing-k16", "soft-routing-k64", "fql-k1"]
    assert any("fql has no K" in note for note in plan.notes) and not (tmp_path / "out").exists()


def test_rerun_skips_every_finished_group_and_modifies_nothing(finished):
    def mtimes():
        return {path: path.stat().st_mtime_ns for path in finished.rglob("*")
                if path.is_file() and path.name != grid.SWEEP_FILE}

    before = mtimes()
    result = sweep(finished, grid_args=GRID)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("skipped") == len(FINISHED_GROUPS) and "done" not in result.stdout
    assert mtimes() == before
    assert grid.spec_from_values(grid.read_sweep_file(finished / grid.SWEEP_FILE), {}) == SPEC


def test_killed_sweep_resumes_to_the_results_of_an_uninterrupted_one(finished, tmp_path):
    out = tmp_path / "out"
    first = out / GROUP_DIRS[0]
    process = start_sweep(out, "--jobs", "1", "--threads", "1")
    wait_until(lambda: (first / store.CHECKPOINT_FILE).exists() or process.poll() is not None, WAIT_S, 0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert (first / store.CHECKPOINT_FILE).exists(), f"no checkpoint of {first} in {WAIT_S} s"
    assert not (first / store.SUMMARY_FILE).exists(), "the sweep finished its first group before the kill"
    assert wait_until(lambda: folders.lock_holder(first) is None), "its run outlived it"  # it dies with the sweep

    result = sweep(out, "--jobs", "2", "--threads", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resume from its checkpoint" in result.stdout
    assert_same_results(out, finished, GROUP_DIRS)
    log = (out / "logs" / f"{GROUP_DIRS[0]}.log").read_text()
    assert log.count(executors.ATTEMPT_HEADER) == 2  # the killed attempt, then the one that finished
    assert log.strip().splitlines()[-1].startswith("=== exit status 0")


def test_two_sweeps_on_one_folder_train_each_group_once(finished, tmp_path):
    out = tmp_path / "out"
    sweeps = [start_sweep(out, "--jobs", "1", "--threads", "1") for _ in range(2)]
    outputs = [process.communicate(timeout=WAIT_S) for process in sweeps]
    for process, (stdout, stderr) in zip(sweeps, outputs):
        assert process.returncode == 0, stdout + stderr
    assert all(trainings_in_log(out, group) == 1 for group in GROUP_DIRS)
    statuses = " ".join(stdout for stdout, _ in outputs)
    assert statuses.count(" done ") == 2 and "failed" not in statuses
    assert_same_results(out, finished, GROUP_DIRS)


def test_a_failed_group_does_not_stop_the_others_and_is_listed_with_its_log(tmp_path):
    data, task = tmp_path / "data", "cube-single-play-singletask-task2-v0"
    data.mkdir()
    for name in ("cube-single-play-v0.npz", "cube-single-play-v0-val.npz"):
        (data / name).write_bytes(b"not an npz archive")  # there (the sweep starts), but unreadable (the run fails)
    grid_args = replace_option("--tasks", f"modes-2d,{task}", replace_option("--ablations", "dynamic", PAIR))
    result = sweep(tmp_path / "out", "--dataset-dir", str(data), "--jobs", "2", "--threads", "1", grid_args=grid_args)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {line.split()[0]: line.split()[4] for line in result.stdout.splitlines()
            if line.startswith(("modes", "cube"))}  # task -> status in the final table
    assert rows == {"modes-2d": "done", task: "failed"}, result.stdout
    log = tmp_path / "out" / "logs" / task / "dynamic-k2.log"
    assert f"failed: {task} dynamic K=2: error: bad OGBench dataset file" in result.stdout
    assert f"(log: {log})" in result.stdout and "bad OGBench dataset file" in log.read_text()


def test_ray_executor_gives_the_results_of_the_local_one_each_group_on_the_gpu_ray_gave_it(finished, tmp_path,
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
    assert_same_results(tmp_path / "out", finished, GROUP_DIRS)  # (JAX on the CPU ignores CUDA_VISIBLE_DEVICES)
    # Both groups ran at once (2 CPUs, one each), so Ray gave each one of its two GPUs (ray.get_gpu_ids() in
    # the task), and set CUDA_VISIBLE_DEVICES to it, which the group's run process inherited and recorded.
    assert sorted(r.outcome.gpus for r in results) == [("0",), ("1",)], [r.outcome for r in results]
    for r in results:  # (and the memory fraction of a whole GPU: ablations.gpus.ray_slot)
        devices = store.read_json(r.planned.run_dir / store.CONFIG_FILE)["devices"]
        assert devices["environment"]["CUDA_VISIBLE_DEVICES"] == r.outcome.gpus[0], (r.planned.name, devices)
        assert devices["environment"]["XLA_CLIENT_MEM_FRACTION"] == "0.9", (r.planned.name, devices)


def test_dry_run_prints_plan_and_estimate_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = invoke("sweep", *replace_option("--ablations", "dynamic", PAIR), "--out", str(out), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dynamic" in result.stdout and "estimate" in result.stdout and "wall with" in result.stdout
    assert not out.exists()


def test_changed_settings_of_finished_runs_are_refused_unless_forced(finished):
    before = store.read_json(finished / GROUP_DIRS[0] / store.CONFIG_FILE)
    refused = invoke("sweep", *GRID, "--lr", "0.001", "--out", str(finished))
    assert refused.exit_code == 2 and "other settings" in refused.stderr and "--force" in refused.stderr
    assert store.read_json(finished / GROUP_DIRS[0] / store.CONFIG_FILE) == before
    forced = plan_sweep(replace(SPEC, lr=0.001), finished, force=True)
    assert [p.state.kind for p in forced.groups] == [folders.CONFLICT] * len(FINISHED_GROUPS)
    assert all(job_for(forced, p, 1).force for p in forced.to_run)
    longer = plan_sweep(replace(SPEC, steps=400), finished)  # more steps: finished runs are extended
    assert [p.state.kind for p in longer.to_run] == [folders.RESUMABLE] * len(FINISHED_GROUPS)


def test_each_group_is_skipped_resumed_or_restarted_by_what_its_folder_holds(finished, monkeypatch):
    launched = []
    monkeypatch.setattr(executors, "run_logged", lambda command, *_: launched.append(command[-1]) or
                        executors.GroupOutcome(executors.DONE))

    def outcome(spec, force=False):
        plan = plan_sweep(spec, finished, force=force)
        return executors.run_group(job_for(plan, plan.groups[0], 1)).status

    assert outcome(SPEC) == executors.SKIPPED and launched == []
    assert outcome(replace(SPEC, steps=400)) == executors.DONE and launched == ["--resume"]
    assert outcome(replace(SPEC, lr=0.001), force=True) == executors.DONE and launched[-1] == "--force"
    conflict = plan_sweep(replace(SPEC, lr=0.001), finished, force=True)
    unforced = replace(job_for(conflict, conflict.groups[0], 1), force=False)  # (settings changed after planning)
    failed = executors.run_group(unforced)
    assert failed.status == executors.FAILED and "--force" in failed.error and len(launched) == 2


@pytest.mark.parametrize("args, phrase", [
    (replace_option("--ablations", "dynamic,static"), "unknown ablation 'static'; valid: dynamic, static-routing"),
    (replace_option("--tasks", "modes-3d"), "unknown task 'modes-3d'"),
    (replace_option("--k", "4,0"), "K must be >= 1"),
    (replace_option("--tasks", ""), "empty grid: --tasks"),
    (replace_option("--ablations", "refresh-0"), "refresh interval must be a positive"),
    (replace_option("--ablations", "soft-routing") + ["--routing-temperature", "0"],
     "--routing-temperature must be > 0"),
    (GRID + ["--routing-temperature", "0.5"], "--routing-temperature applies to no group"),
    (replace_option("--tasks", "cube-single-play-singletask-task2-v0") + ["--dataset-dir", "/nonexistent"],
     "missing OGBench dataset files /nonexistent/cube-single-play-v0.npz"),
    (GRID + ["--jobs", "2", "--threads", "64"], "cores"),
    (GRID + ["--executor", "ray", "--jobs", "2"], "--jobs applies to --executor local"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, phrase):
    result = invoke("sweep", *args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, phrase", [
    ("tasks = [modes-2d]", "not valid TOML"),
    ('tasks = "modes-2d"\nk_values = [4]', "unknown sweep setting 'k_values'"),
    ('tasks = "modes-2d"\nsteps = "many"', "steps must be an int"),
])
def test_bad_sweep_file_is_one_line_exit_2(tmp_path, text, phrase):
    (tmp_path / "sweep.toml").write_text(text)
    result = invoke("sweep", "--from", str(tmp_path / "sweep.toml"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and phrase in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_ray_executor_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = invoke("sweep", *GRID, "--executor", "ray", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "pip install .[ray]" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
