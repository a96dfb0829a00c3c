"""Loading a trained policy (`training.load_run`) and `drol-diag evaluate RUN`: the configs and a policy per
seed from a run folder, an evaluation of its checkpoint that is training's own evaluation number for number,
nothing written into the run unless --write, and one-line errors for bad input (issue 13)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from drol_diag.runfolder import store
from tests.helpers import SMALL_SWEEP_STEPS, invoke

RUN = Path("modes-2d", "dynamic-k2")  # a run of the small sweep: seeds 0-2, 300 updates, evaluations every 100


def folder_contents(folder: Path) -> dict[str, bytes | str]:
    """Every file (its bytes) and symlink (its target) under `folder`, by relative path."""
    contents: dict[str, bytes | str] = {}
    for root, folders, files in os.walk(folder):
        for name in files + [f for f in folders if os.path.islink(os.path.join(root, f))]:
            path = Path(root, name)
            contents[str(path.relative_to(folder))] = os.readlink(path) if path.is_symlink() else path.read_bytes()
    return contents


def test_evaluate_reproduces_the_runs_last_evaluation_and_writes_nothing_into_it(small_sweep, tmp_path):
    run_dir = small_sweep / RUN
    before = folder_contents(small_sweep / RUN.parent)  # (the run folder, and the lock file beside it)
    logs = store.read_store(run_dir)
    assert logs["eval_step"].values[-1] == SMALL_SWEEP_STEPS
    logged = logs["eval_score"].sel(eval_step=SMALL_SWEEP_STEPS).values  # (seeds,)

    result = invoke("evaluate", str(run_dir), "--json", str(tmp_path / "all.json"))
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "all.json").read_text())
    assert (record["step"], record["episodes"], record["seeds"]) == (SMALL_SWEEP_STEPS, 1, [0, 1, 2])
    assert record["eval_score"] == logged.tolist()  # the same numbers, not only close ones
    assert f"seed 1: score {logged[1]:.3f}" in result.stdout

    one = invoke("evaluate", str(run_dir), "--seeds", "2", "--json", str(tmp_path / "one.json"))
    assert one.exit_code == 0, one.output
    assert json.loads((tmp_path / "one.json").read_text())["eval_score"] == [logged[2]]
    assert folder_contents(small_sweep / RUN.parent) == before


def test_load_run_gives_the_configs_and_each_seeds_policy_as_training_evaluated_it(small_sweep):
    import training
    from drol_diag.tasks import load_task
    from training.evaluation import eval_seed

    run_dir = small_sweep / RUN
    config = store.read_json(run_dir / store.CONFIG_FILE)
    trained = training.load_run(run_dir)
    assert json.loads(json.dumps(dataclasses.asdict(trained.learner))) == config["learner"]
    assert json.loads(json.dumps(dataclasses.asdict(trained.run))) == config["run"]
    assert (trained.step, trained.seeds, sorted(trained.policies)) == (SMALL_SWEEP_STEPS, (0, 1, 2), [0, 1, 2])

    observations = np.random.default_rng(0).uniform(-1, 1, (5, trained.obs_dim))
    actions = trained.policies[1](observations)
    assert actions.shape == (5, trained.action_dim) == (5, 2) and np.all(np.abs(actions) <= 1)
    assert not np.array_equal(trained.policies[1](observations), actions)  # a fresh prior sample per call
    trained.policies[1].reset()
    np.testing.assert_array_equal(trained.policies[1](observations), actions)
    with pytest.raises(ValueError, match=r"observations must be an array \(n, 2\)"):
        trained.policies[1](observations[:, :1])

    # The policy object itself, given to the task's evaluator with training's episode seed, scores what
    # training logged at the checkpoint's update.
    task = load_task(trained.run.task)
    logged = store.read_store(run_dir)["eval_score"].sel(eval_step=SMALL_SWEEP_STEPS).values
    policy = training.load_run(run_dir).policies[0]
    score = task.evaluate(policy, trained.run.eval_episodes, eval_seed(0, trained.step))["score"]
    assert score == logged[0]


def test_evaluate_write_appends_a_record_to_the_run_and_changes_nothing_else(small_sweep, tmp_path):
    task_folder = tmp_path / "modes-2d"
    shutil.copytree(small_sweep / RUN.parent, task_folder, symlinks=True)
    run_dir = tmp_path / RUN
    before = folder_contents(run_dir)
    first = invoke("evaluate", str(run_dir), "--seeds", "0", "--write")
    second = invoke("evaluate", str(run_dir), "--seeds", "0", "--episodes", "2", "--write")
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert f"wrote {run_dir / 'evaluations.json'}" in second.stdout
    after = folder_contents(run_dir)
    records = json.loads(after.pop("evaluations.json"))
    assert after == before
    assert [(r["step"], r["episodes"], r["seeds"]) for r in records] == [(SMALL_SWEEP_STEPS, 1, [0]),
                                                                          (SMALL_SWEEP_STEPS, 2, [0])]
    assert records[0]["eval_score"] == [store.read_store(run_dir)["eval_score"].values[0, -1]]
    assert set(records[0]) >= {"step", "episodes", "seeds", "eval_score", "command"}  # (command: sys.argv)
    assert not list(run_dir.glob("*.tmp"))
    with store.run_lock(run_dir):  # as a training process holds it
        busy = invoke("evaluate", str(run_dir), "--seeds", "0", "--write")
    assert busy.exit_code == store.EXIT_BUSY and "is being trained by" in busy.stderr, busy.output
    assert len(json.loads((run_dir / "evaluations.json").read_text())) == 2


def test_episodes_do_not_apply_to_a_task_scored_in_closed_form(small_sweep):
    result = invoke("evaluate", str(small_sweep / RUN), "--seeds", "0", "--episodes", "3")
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    assert "scored in closed form on 4096 states per seed; --episodes 3 does not apply" in header, header
    assert "episode" not in header.replace("--episodes 3", "")


def test_evaluate_of_a_run_in_training_is_exit_status_3_before_and_after_its_first_checkpoint(small_sweep, tmp_path):
    untrained = without(small_sweep / RUN, tmp_path, store.CHECKPOINT_FILE)  # (training, before its first checkpoint)
    trained = tmp_path / "trained" / RUN
    shutil.copytree(small_sweep / RUN, trained, symlinks=True)
    for run_dir, write, phrase in ((untrained, ["--write"], "once training has ended"),
                                   (untrained, [], "has no checkpoint yet"), (trained, ["--write"], "once training")):
        with store.run_lock(run_dir):  # as a training process holds it
            busy = invoke("evaluate", str(run_dir), "--seeds", "0", *write)
        assert busy.exit_code == store.EXIT_BUSY, (run_dir, write, busy.output)
        assert busy.stderr.count("\n") == 1 and "is being trained by" in busy.stderr and phrase in busy.stderr, \
            busy.stderr
    assert not (untrained / "evaluations.json").exists() and not (trained / "evaluations.json").exists()


def without(run_dir: Path, tmp_path: Path, name: str) -> Path:
    """A copy of the run folder without its file `name`."""
    copy = tmp_path / "copy" / RUN
    shutil.copytree(run_dir, copy, symlinks=True)
    (copy / name).unlink()
    return copy


@pytest.mark.parametrize("case, phrase", [
    ("not a run folder", "is not a run folder: it has no config.json"),
    ("missing", "no such run folder"),
    ("no checkpoint", "has no checkpoint"),
    ("seed not in the run", "seed 7 is not in the run"),
    ("no episodes", "--episodes must be a positive integer, got 0"),
    ("empty seed item", "an item is empty"),
])
def test_bad_input_is_one_error_line_with_exit_2_and_writes_nothing(small_sweep, tmp_path, case, phrase):
    run_dir = small_sweep / RUN
    target, extra = {
        "not a run folder": (tmp_path, []),
        "missing": (tmp_path / "nothing-here", []),
        "no checkpoint": (without(run_dir, tmp_path, store.CHECKPOINT_FILE) if case == "no checkpoint" else None, []),
        "seed not in the run": (run_dir, ["--seeds", "7"]),
        "no episodes": (run_dir, ["--episodes", "0"]),
        "empty seed item": (run_dir, ["--seeds", "0,,1"]),
    }[case]
    before = folder_contents(tmp_path), folder_contents(small_sweep / RUN.parent)
    result = invoke("evaluate", str(target), *extra, "--write", "--json", str(tmp_path / "out.json"))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and phrase in result.stderr, \
        result.stderr
    assert (folder_contents(tmp_path), folder_contents(small_sweep / RUN.parent)) == before
