"""`drol-diag run` end to end on the embedded modes tasks: training beats the BC baseline, exact resume,
kill safety, divergence, bad input. On OGBench datasets: test_run_ogbench.py."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from flax import serialization

from drol_diag.runfolder import store
from drol_diag.settings import resolve
from drol_diag.tasks import load_task
from drol_diag.tasks.modes import MODES_TASKS, ModesGeometry
from tests.helpers import COMMAND_TIMEOUT_S, DROL_DIAG, WAIT_S, invoke, wait_until
from training.driver import RunSummary, format_summary, train
from training.observer import PHASES

TINY = dict(actor_hidden=(32, 32), critic_hidden=(32, 32), batch_size=64, num_candidates=4)


def short_run(out: Path, steps: int = 20, seeds: str = "0,1") -> list[str]:
    """`drol-diag run` for a few updates of tiny networks: one configuration for the tests of the command's own
    behaviour (refusals, resume, divergence), so that they share their compiled programs."""
    return ["run", "--steps", str(steps), "--hidden", "16", "--batch-size", "16", "--k", "2", "--seeds", seeds,
            "--log-interval", "10", "--eval-interval", "20", "--probes", "64", "--out", str(out), "--no-progress"]


def checkpoint_leaves(run_dir: Path) -> list[np.ndarray]:
    with open(run_dir / store.CHECKPOINT_FILE, "rb") as f:
        payload = serialization.msgpack_restore(f.read())
    flat = []

    def walk(node):
        if isinstance(node, dict):
            for key in sorted(node):
                walk(node[key])
        else:
            flat.append(np.asarray(node))
    walk(payload["state"])
    return flat


def test_drol_on_modes_2d_beats_the_dataset_average_policy(tmp_path):
    task = load_task("modes-2d")
    # 500 updates at lr 1e-3 (the demo's): seeds 0.48 and 0.42, 8.5 s alone (1000 at the default lr: 12.4 s)
    learner, run = resolve("modes-2d", "auto", actor_hidden=(64,) * 3, critic_hidden=(64,) * 3, batch_size=64, lr=1e-3,
                           num_candidates=8, seeds=(0, 1), steps=500, log_interval=250, eval_interval=250,
                           checkpoint_interval=500, diagnostics=False)  # (learning, not probes)
    summary = train(task, learner, run, tmp_path, progress=False)

    geometry = ModesGeometry(MODES_TASKS["modes-2d"])
    bc_score = task.evaluate(lambda obs: np.asarray(geometry.mean_action(jnp.asarray(obs))), 1, 0)["score"]
    oracle = task.evaluate(lambda obs: np.asarray(geometry.best_action(jnp.asarray(obs))), 1, 0)["score"]
    assert oracle == pytest.approx(1.0, abs=1e-6)
    assert bc_score < 0.1
    assert all(score > bc_score + 0.2 for score in summary.scores), summary.scores
    # The run folder holds what the issue promises.
    run_dir = Path(summary.run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["learner"]["num_candidates"] == 8 and config["run"]["seeds"] == [0, 1]
    assert "jax" in config["versions"] and config["git_commit"]
    logs = xr.open_zarr(run_dir / "logs.zarr", consolidated=False)
    assert list(logs.step.values) == [250, 500] and list(logs.seed.values) == [0, 1]
    assert np.all(np.isfinite(logs["critic_loss"].values))
    assert logs["eval_score"].dims == ("seed", "eval_step") and logs["eval_score"].shape == (2, 2)
    np.testing.assert_allclose(summary.scores, logs["eval_score"].values.mean(axis=1), rtol=1e-6)
    assert np.all(np.isfinite(logs["td_error"].values))


def test_resume_is_exact(tmp_path):
    task = load_task("modes-2d")
    # The checkpoint at 30 falls between log rows (every 20), so the resumed run must carry the
    # training metrics of updates 21-30 over into its row at 40. (A checkpoint every 10 updates makes
    # every chunk 10 updates long: one training program to compile, short_run's.)
    # (the diagnostics are resumed too; their size does not matter)
    common = dict(actor_hidden=(16,), critic_hidden=(16,), batch_size=16, num_candidates=2, seeds=(0, 1),
                  log_interval=20, eval_interval=30, checkpoint_interval=10, probes=64)  # (short_run's networks)
    learner, first_half = resolve("modes-2d", "auto", steps=30, **common)
    _, full = resolve("modes-2d", "auto", steps=60, **common)

    train(task, learner, first_half, tmp_path / "resumed", progress=False)
    resumed = train(task, learner, full, tmp_path / "resumed", resume=True, progress=False)
    straight = train(task, learner, full, tmp_path / "straight", progress=False)

    for a, b in zip(checkpoint_leaves(Path(resumed.run_dir)), checkpoint_leaves(Path(straight.run_dir))):
        np.testing.assert_array_equal(a, b)
    assert resumed.scores == straight.scores
    resumed_logs = store.read_store(Path(resumed.run_dir))
    straight_logs = store.read_store(Path(straight.run_dir))
    xr.testing.assert_equal(resumed_logs.drop_attrs(), straight_logs.drop_attrs())


def test_rerun_without_resume_is_refused_and_changed_config_cannot_resume(tmp_path):
    args = short_run(tmp_path)
    assert invoke(*args).exit_code == 0
    again = invoke(*args)
    assert again.exit_code == 2 and "--resume" in again.stderr
    changed = invoke(*args, "--bc-coef", "0.5", "--resume")
    assert changed.exit_code == 2 and "learner settings" in changed.stderr
    fewer_probes = invoke(*args, "--probes", "32", "--resume")  # (the probe count shapes the log)
    assert fewer_probes.exit_code == 2 and "diagnostics settings" in fewer_probes.stderr


def test_resume_of_a_finished_run_changes_nothing_and_without_checkpoint_starts_clean(tmp_path):
    args = short_run(tmp_path)
    run_dir = tmp_path / "modes-2d" / "dynamic-k2"
    assert invoke(*args).exit_code == 0
    files = [run_dir / store.SUMMARY_FILE, run_dir / store.CHECKPOINT_FILE]
    before = [(f.stat().st_mtime_ns, f.read_bytes()) for f in files]
    again = invoke(*args, "--resume")
    assert again.exit_code == 0 and "seed 0: score" in again.stdout
    assert [(f.stat().st_mtime_ns, f.read_bytes()) for f in files] == before
    # A run killed before its first checkpoint left logs but nothing to resume from: it starts clean.
    (run_dir / store.CHECKPOINT_FILE).unlink()
    assert invoke(*args, "--resume").exit_code == 0
    logs = xr.open_zarr((run_dir / store.LOG_STORE).resolve(), consolidated=False)
    assert list(logs.step.values) == [10, 20] and list(logs.eval_step.values) == [20]


def long_run(out: Path) -> list[str]:
    """A run far longer than any test waits (checkpoint every 400 updates), to stop part-way; one set of
    settings for the SIGKILL and Ctrl-C tests, so the second finds its programs in the compilation cache."""
    return [DROL_DIAG, "run", "--steps", "100000", "--hidden", "16", "--batch-size", "16", "--k", "2",
            "--seeds", "0,1", "--log-interval", "200", "--eval-interval", "1000", "--checkpoint-interval", "400",
            "--out", str(out), "--no-progress", "--no-diagnostics"]


def test_sigkill_loses_at_most_work_since_checkpoint_and_logs_stay_readable(tmp_path):
    args = long_run(tmp_path)
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    run_dir = tmp_path / "modes-2d" / "dynamic-k2"

    def checkpointed_and_four_rows() -> bool:
        if not ((run_dir / "checkpoint.msgpack").exists() and (run_dir / "logs.zarr").exists()):
            return False
        # (resolved first: the link moves to a new version at each flush while the run writes; a version two
        # flushes old is deleted, which a fast run does while this opens it: then look again)
        try:
            return xr.open_zarr((run_dir / "logs.zarr").resolve(), consolidated=False).sizes["step"] >= 4
        except FileNotFoundError:
            return False

    try:
        if not wait_until(checkpointed_and_four_rows, WAIT_S, 0.2):
            pytest.fail(f"the run wrote no checkpoint and 4 log rows in {WAIT_S} s")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    metrics = xr.open_zarr(run_dir / "logs.zarr", consolidated=False).load()  # readable after SIGKILL
    steps = metrics.step.values
    assert steps[0] == 200 and np.all(np.diff(steps) == 200)
    with open(run_dir / "checkpoint.msgpack", "rb") as f:
        saved_step = json.loads(serialization.msgpack_restore(f.read())["extra"])["step"]
    assert saved_step >= 400 and saved_step % 400 == 0
    # Resume to a nearby step: the rows after the checkpoint are replaced, none duplicated. (In this process: the
    # killed one's files are what is tested.)
    target = saved_step + 400
    result = invoke(*args[1:3], str(target), *args[4:], "--resume")
    assert result.exit_code == 0, result.output
    metrics = xr.open_zarr(run_dir / "logs.zarr", consolidated=False).load()
    assert list(metrics.step.values) == list(range(200, target + 1, 200))
    assert not list((run_dir / ".versions").glob("*.tmp*"))


def test_ctrl_c_prints_one_line_saying_what_is_kept_and_exits_130(tmp_path):
    process = subprocess.Popen(long_run(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = tmp_path / "modes-2d" / "dynamic-k2"
    try:
        assert wait_until(lambda: (run_dir / "checkpoint.msgpack").exists(), WAIT_S, 0.1), "no checkpoint"
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=WAIT_S)
    assert process.returncode == 130 and stdout == "", (process.returncode, stdout)
    assert stderr.splitlines() == [f"interrupted: training stopped; {run_dir} keeps its last checkpoint: the same "
                                   "command with --resume continues from it"], stderr


BAD_INPUTS = [
    (["--task", "no-such-task"], "unknown task"),
    (["--task", "modes-9d"], "unknown task"),
    (["--ablation", "nope"], "unknown ablation"),
    (["--k", "0"], "K"),
    (["--steps", "0"], "steps"),
    (["--steps", "-5"], "steps"),
    (["--batch-size", "0"], "batch size"),
    (["--seeds", "a,b"], "--seeds"),
    (["--seeds", "4-1"], "--seeds"),
    (["--seeds", "1,1"], "repeated"),
    (["--hidden", "64,x"], "--hidden"),
    (["--profile", "huge"], "profile"),
    (["--q-agg", "max"], "q_agg"),
    (["--probes", "0"], "--probes"),
    (["--ablation", "refresh-0"], "refresh interval must be a positive"),
    (["--ablation", "refresh-x"], "valid: dynamic, static-routing"),
    (["--ablation", "soft-routing", "--routing-temperature", "0"], "temperature must be > 0"),
    (["--ablation", "soft-routing", "--routing-temperature", "-1"], "temperature must be > 0"),
    (["--routing-temperature", "0.5"], "soft-routing only"),
    (["--ablation", "bc-only", "--q-coef", "1"], "bc-only fixes q_coef"),
    (["--ablation", "fql", "--k", "4"], "fql has no candidates"),
    (["--alpha", "3"], "alpha applies to the fql ablation only"),
]


@pytest.mark.parametrize("extra, phrase", BAD_INPUTS)
def test_bad_input_is_a_one_line_error_with_exit_2_and_writes_nothing(tmp_path, extra, phrase):
    out = tmp_path / "out"
    result = invoke("run", "--out", str(out), "--no-progress", *extra)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], result.stderr
    assert not out.exists()


def test_console_script_lists_commands_and_fails_with_exit_2(monkeypatch, capsys):
    listing = subprocess.run([DROL_DIAG, "--help"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    assert listing.returncode == 0 and "run" in listing.stdout
    # The script's entry point, in this process (a fresh one per case would only add its start-up).
    from cli import main

    for bad_args in (["run", "--k", "abc"], ["run", "--no-such-option"], ["nope"]):  # (bad values: BAD_INPUTS)
        monkeypatch.setattr(sys, "argv", [DROL_DIAG, *bad_args])
        with pytest.raises(SystemExit) as exit_status:
            main()
        stderr = capsys.readouterr().err
        assert exit_status.value.code == 2 and stderr.startswith("error: "), (bad_args, stderr)
        assert len(stderr.strip().splitlines()) == 1, stderr


def test_diverged_seeds_are_recorded_and_reported(tmp_path):
    result = invoke(*short_run(tmp_path, steps=40), "--lr", "1e8")
    assert result.exit_code == 0, result.output
    assert "DIVERGED at update" in result.stdout and "diverged seeds" in result.stdout
    assert "nan" not in result.stdout and "mean score: none (no seed has a score)" in result.stdout
    run_dir = tmp_path / "modes-2d" / "dynamic-k2"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert all(0 <= step < 10 for step in summary["diverged_steps"])
    assert summary["steps"] == 10  # every seed diverged in the first chunk (to the first log row): the run stopped there
    metrics = xr.open_zarr(run_dir / "logs.zarr", consolidated=False)
    assert bool(metrics["diverged"].values.all())


def summary_of(scores, evaluations, diverged_steps) -> RunSummary:
    return RunSummary(run_dir="runs/x", seeds=list(range(len(scores))), scores=scores, diverged_steps=diverged_steps,
                      steps=200, wall_time_s=9.0, compile_time_s=5.0, train_time_s=1.0, updates_per_s=200.0,
                      seed_updates_per_s=200.0 * len(scores), score_evaluations=evaluations)


def test_the_summary_says_how_many_evaluations_a_score_averages_its_spread_convention_and_each_diverged_seed():
    scores = [0.2, 0.5, 0.6]
    mean_line = next(line for line in format_summary(summary_of(scores, [2, 2, 2], [-1] * 3)).splitlines()
                     if "mean score" in line)
    assert f"mean score {np.mean(scores):.3f} +- {np.std(scores, ddof=1):.3f} (std over 3 seeds (n-1))" in mean_line
    assert "the mean of its 2 evaluations" in mean_line and "the last 3" in mean_line and "made 2" in mean_line
    full = format_summary(summary_of(scores, [3, 3, 3], [-1] * 3))
    assert "the mean of its last 3 evaluations" in full and "made" not in full
    one = format_summary(summary_of(scores, [1, 1, 1], [-1] * 3))
    assert "its one evaluation" in one and "made 1" in one

    partly = format_summary(summary_of([0.2, float("nan"), 0.6], [3, 0, 3], [-1, 40, -1]))
    assert "seed 1: no score: DIVERGED at update 40" in partly and "nan" not in partly
    assert f"mean score 0.400 +- {np.std([0.2, 0.6], ddof=1):.3f} (std over 2 seeds (n-1)); seed 1 left out" in partly
    alone = format_summary(summary_of([0.3, float("nan")], [3, 0], [-1, 7]))
    assert "mean score 0.300 (one seed with a score: no std)" in alone and "nan" not in alone


def test_a_run_records_and_prints_where_its_process_time_went(tmp_path):
    # One seed: programs no other test compiled in this process, as a fresh process would (compile_training then
    # counts setup's compile of the initial states beside the chunks', which compile_time_s does not).
    result = invoke(*short_run(tmp_path, seeds="0"))
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "modes-2d" / "dynamic-k2" / "summary.json").read_text())
    phases, wall = summary["phases"], summary["process_wall_s"]
    assert set(phases) == set(PHASES) and all(seconds >= 0 for seconds in phases.values()), phases
    assert sum(phases.values()) <= wall + 0.05 and wall >= summary["wall_time_s"]
    assert phases["training"] == pytest.approx(summary["train_time_s"], abs=0.05)
    assert phases["compile_training"] >= summary["compile_time_s"] and phases["diagnostics"] > 0
    assert phases["evaluation"] > 0 and phases["writing"] > 0
    assert phases["startup"] < 0.1 * wall  # (a command run inside another process: timed from its call, not from
    # the process's start, which would count everything pytest did before it)
    printed = [line for line in result.stdout.splitlines() if "process time" in line]
    assert len(printed) == 1 and f"process time {wall:.1f} s: startup" in printed[0]
    assert f"training {phases['training']:.1f} s {phases['training'] / wall:.0%}" in result.stdout
