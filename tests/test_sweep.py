"""`drol-diag sweep`: grid expansion, skip, resume and restart by what a folder holds, the dry run, bad input.
The executors (kill safety, concurrent sweeps on one folder, a failed group, Ray): test_sweep_executors.py.

The finished sweep these tests read is the session's small sweep (tests/conftest.py, shared with the report
tests) extended by an fql group (conftest's finished_sweep); the sweeps the executor tests run themselves are two
of its groups (PAIR)."""

import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ablations import executors, grid
from ablations.grid import Group, SweepSpec
from ablations.sweep import job_for, plan_sweep
from drol_diag.runfolder import folders, store
from tests.helpers import (
    FINISHED_GROUPS,
    FINISHED_SWEEP,
    invoke,
    replace_option,
    run_cli,
    start_cli,
)

SPEC = SweepSpec(tasks=("modes-2d",), ablations=("dynamic", "static-routing", "fql"), k=(2, 4), seeds=(0, 1, 2),
                 steps=300, hidden=(8,), log_interval=100, eval_interval=100, checkpoint_interval=100,
                 eval_episodes=1, probes=64)  # tests.helpers.FINISHED_SWEEP, as a spec
GRID = FINISHED_SWEEP
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


EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.toml") if "tasks" in grid.read_sweep_file(p)))
def test_every_sweep_file_in_examples_plans_its_grid(name, tmp_path):
    """The study files docs/findings.md reproduces from read and plan as written (a key renamed, a task gone: here)."""
    spec = grid.spec_from_values(grid.read_sweep_file(EXAMPLES / name), {})
    plan = plan_sweep(spec, tmp_path / "out")
    points = math.prod(len(values) for _, values in spec.grid)  # (the [grid] table's combinations)
    assert len(plan.groups) == len(spec.tasks) * len(spec.ablations) * len(spec.k) * points
    assert not (tmp_path / "out").exists()


def test_rerun_skips_every_finished_group_and_modifies_nothing(finished_sweep):
    def mtimes():
        return {path: path.stat().st_mtime_ns for path in finished_sweep.rglob("*")
                if path.is_file() and path.name != grid.SWEEP_FILE}

    before = mtimes()
    result = sweep(finished_sweep, grid_args=GRID)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("skipped") == len(FINISHED_GROUPS) and "done" not in result.stdout
    assert mtimes() == before
    assert grid.spec_from_values(grid.read_sweep_file(finished_sweep / grid.SWEEP_FILE), {}) == SPEC


def test_dry_run_prints_plan_and_estimate_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = invoke("sweep", *replace_option("--ablations", "dynamic", PAIR), "--out", str(out), "--dry-run",
                    "--no-diagnostics")  # (the estimate's warm-up sets up no probes: a shorter test)
    assert result.exit_code == 0, result.output
    assert "dynamic" in result.stdout and "estimate" in result.stdout and "wall with" in result.stdout
    assert not out.exists()


def test_the_estimate_counts_every_part_of_a_groups_run_along_its_schedule(tmp_path):
    from ablations.estimate import Costs, group_estimate

    spec = replace(PAIR_SPEC, ablations=("dynamic",), steps=1000, log_interval=100, eval_interval=250,
                   checkpoint_interval=500)
    costs = Costs(start_s=4.0, setup_s=20.0, compile_s=10.0, update_s=0.002, row_s=0.05, eval_s=0.1, write_s=0.5)
    estimate = group_estimate(costs, plan_sweep(spec, tmp_path).to_run[0])
    # Chunks end at every log row (10) and at the evaluations off that grid (250, 750): 12 chunks of 100 or 50
    # updates (one program compiled for both lengths); the set-up holds the first row, evaluation and write.
    assert estimate.compile_s == pytest.approx(4.0 + 20.0 + 10.0)
    assert estimate.total_s == pytest.approx(estimate.compile_s + 1000 * 0.002 + 9 * 0.05 + 3 * 0.1 + 11 * 0.5)
    assert estimate.seed_updates_per_s == pytest.approx(3 / 0.002)


def test_the_final_table_gives_a_group_whose_seeds_all_diverged_no_mean_score(tmp_path):
    from ablations.sweep import GroupResult
    from ablations.tables import results_text

    planned = plan_sweep(PAIR_SPEC, tmp_path).to_run
    text = results_text([GroupResult(planned[0], executors.GroupOutcome(executors.DONE, wall_s=9.0),
                                     {"mean_score": float("nan"), "diverged_steps": [3, 5, 4]}),
                         GroupResult(planned[1], executors.GroupOutcome(executors.DONE, wall_s=9.0),
                                     {"mean_score": 0.25})])
    assert "nan" not in text and "none: no seed scored" in text and "0.250" in text, text


def test_the_progress_bar_gives_the_seed_updates_per_s_the_runs_report(tmp_path, capsys):
    from cli.app import group_progress_bar

    runs = {"dynamic-k2": (1234.0, 2.0), "dynamic-k4": (600.0, 4.0)}  # (seed-updates/s, training seconds)
    with group_progress_bar(True, len(runs)) as on_progress:
        for ended, (name, (rate, train_s)) in enumerate(runs.items(), 1):
            run_dir = tmp_path / "modes-2d" / name
            run_dir.mkdir(parents=True)
            store.write_json_atomic(run_dir / store.SUMMARY_FILE, {"seed_updates_per_s": rate, "train_time_s": train_s})
            job = executors.GroupJob(name, str(run_dir), "", (), {"seeds": [0, 1, 2]}, 300, 1, False)
            on_progress(ended, len(runs), job, executors.GroupOutcome(executors.DONE, wall_s=60.0))
            bar = capsys.readouterr().err
            shown = sum(r * t for r, t in list(runs.values())[:ended]) / sum(t for _, t in list(runs.values())[:ended])
            assert f"{shown:.0f} seed-updates/s in training" in bar, bar


def test_changed_settings_of_finished_runs_are_refused_unless_forced(finished_sweep):
    before = store.read_json(finished_sweep / GROUP_DIRS[0] / store.CONFIG_FILE)
    refused = invoke("sweep", *GRID, "--lr", "0.001", "--out", str(finished_sweep))
    assert refused.exit_code == 2 and "other settings" in refused.stderr and "--force" in refused.stderr
    assert store.read_json(finished_sweep / GROUP_DIRS[0] / store.CONFIG_FILE) == before
    forced = plan_sweep(replace(SPEC, lr=0.001), finished_sweep, force=True)
    assert [p.state.kind for p in forced.groups] == [folders.CONFLICT] * len(FINISHED_GROUPS)
    assert all(job_for(forced, p, 1).force for p in forced.to_run)
    longer = plan_sweep(replace(SPEC, steps=400), finished_sweep)  # more steps: finished runs are extended
    assert [p.state.kind for p in longer.to_run] == [folders.RESUMABLE] * len(FINISHED_GROUPS)


def test_each_group_is_skipped_resumed_or_restarted_by_what_its_folder_holds(finished_sweep, monkeypatch):
    launched = []
    monkeypatch.setattr(executors, "run_logged", lambda command, *_: launched.append(command[-1]) or
                        executors.GroupOutcome(executors.DONE))

    def outcome(spec, force=False):
        plan = plan_sweep(spec, finished_sweep, force=force)
        return executors.run_group(job_for(plan, plan.groups[0], 1)).status

    assert outcome(SPEC) == executors.SKIPPED and launched == []
    assert outcome(replace(SPEC, steps=400)) == executors.DONE and launched == ["--resume"]
    assert outcome(replace(SPEC, lr=0.001), force=True) == executors.DONE and launched[-1] == "--force"
    conflict = plan_sweep(replace(SPEC, lr=0.001), finished_sweep, force=True)
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
