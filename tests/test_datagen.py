"""`drol-diag data generate / list / info`: tiny datasets from ogbench's real environments and oracles, read
back by ogbench's own loader; the fast path against the plain gymnasium environment; determinism across
worker counts; interrupted runs; bad input."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import numpy as np
import ogbench
import pytest

from drol_diag import datagen
from tests.helpers import DROL_DIAG, WAIT_S, StreamWatch, invoke, wait_until, wait_until_gone

# name: (episodes, steps per episode, observation width, action width); steps chosen so that the oracles
# finish (and achieve) targets within them for seed 0
TINY = {
    "cube-single-play-v0": (2, 100, 28, 5),
    "scene-play-v0": (2, 100, 40, 5),
    "puzzle-3x3-noisy-v0": (2, 80, 55, 5),
    "pointmaze-medium-navigate-v0": (2, 200, 2, 2),
}
BUTTON_FAMILIES = ("scene", "puzzle")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[str, dict[str, datagen.GenerationResult]]:
    """Every TINY dataset generated into one folder (in this process, one worker)."""
    folder = str(tmp_path_factory.mktemp("datasets"))
    results = {name: datagen.generate_dataset(name, folder, episodes=episodes, episode_steps=steps, seed=0, workers=1)
               for name, (episodes, steps, _, _) in TINY.items()}
    return folder, results


def read(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


@pytest.mark.parametrize("name", TINY)
def test_files_have_the_official_layout_and_load_through_ogbench(generated, name, no_network):
    folder, results = generated
    episodes, steps, obs_dim, action_dim = TINY[name]
    result = results[name]
    assert (result.plan.train_episodes, result.plan.val_episodes, result.plan.episode_steps) == (episodes, 1, steps)
    raw = read(result.train_path)
    has_buttons = name.startswith(BUTTON_FAMILIES)
    assert set(raw) == {"observations", "actions", "terminals", "qpos", "qvel"} | ({"button_states"} if has_buttons
                                                                                   else set())
    rows = episodes * steps
    assert raw["observations"].shape == (rows, obs_dim) and raw["actions"].shape == (rows, action_dim)
    assert {key: raw[key].dtype for key in raw} == {key: np.dtype(np.bool_ if key == "terminals" else
                                                                  np.int64 if key == "button_states" else np.float32)
                                                    for key in raw}
    assert np.array_equal(np.flatnonzero(raw["terminals"]), np.arange(1, episodes + 1) * steps - 1)
    assert np.abs(raw["actions"]).max() <= 1.0 and all(np.isfinite(raw[key]).all() for key in raw)
    if name.startswith("pointmaze"):  # a point's observation is its position: qpos
        np.testing.assert_array_equal(raw["observations"], raw["qpos"])
    assert len(read(result.val_path)["terminals"]) == steps

    task_name = name.replace("-v0", "-singletask-task1-v0")
    _, train, validation = ogbench.make_env_and_datasets(task_name, dataset_dir=folder, compact_dataset=False)
    assert train["observations"].shape == (episodes * (steps - 1), obs_dim)
    assert validation["observations"].shape == (steps - 1, obs_dim)
    np.testing.assert_array_equal(train["actions"], raw["actions"][~raw["terminals"]])
    assert train["rewards"].max() <= 0.0 and np.isfinite(train["rewards"]).all()  # singletask rewards: <= 0
    assert set(np.unique(train["masks"])) <= {0.0, 1.0}


def test_the_oracles_achieve_their_targets(generated):
    _, results = generated
    for name, result in results.items():
        assert result.stats.targets > 0 and result.stats.reached > 0, (name, result.stats)
    maze = results["pointmaze-medium-navigate-v0"]
    assert maze.stats.targets == maze.plan.total_episodes + maze.stats.reached  # a new goal after each success


@pytest.mark.parametrize("name", TINY)
def test_fast_path_equals_the_plain_gymnasium_environment(generated, name):
    """The written files come from the fast path (no wrappers, one observation info per step, memoised maze
    search); OGBench's own construction, gymnasium.make with its wrappers, gives the same bytes."""
    _, results = generated
    result = results[name]
    if name.startswith("puzzle"):  # the lean pre-step info must still see every button press
        assert (np.diff(read(result.train_path)["button_states"], axis=0) != 0).any()
    plain = datagen.run_chunk(datagen.make_episode_runner(result.plan, fast=False), 0, result.plan.total_episodes)
    written = read(result.train_path), read(result.val_path)
    for key, array in plain.arrays.items():
        assert array.tobytes() == np.concatenate([written[0][key], written[1][key]]).tobytes(), key


def test_files_are_byte_identical_whatever_the_workers(generated, tmp_path):
    folder, results = generated
    name = "cube-single-play-v0"
    episodes, steps, _, _ = TINY[name]
    parallel = datagen.generate_dataset(name, str(tmp_path), episodes=episodes, episode_steps=steps, seed=0,
                                        workers=2)
    assert parallel.workers == 2
    for path in (parallel.train_path, parallel.val_path):
        assert Path(path).read_bytes() == Path(folder, os.path.basename(path)).read_bytes()


def test_existing_files_are_kept_unless_forced(generated):
    folder, results = generated
    name = "pointmaze-medium-navigate-v0"
    episodes, steps, _, _ = TINY[name]
    before = Path(results[name].train_path).read_bytes()
    kept = invoke("data", "generate", name, "--dataset-dir", folder, "--episodes", str(episodes),
                  "--episode-steps", str(steps), "--no-progress")
    assert kept.exit_code == 2 and "already exist" in kept.output and "--force" in kept.output
    assert Path(results[name].train_path).read_bytes() == before
    forced = invoke("data", "generate", name, "--dataset-dir", folder, "--episodes", str(episodes),
                    "--episode-steps", str(steps), "--seed", "1", "--force", "--workers", "1", "--no-progress")
    assert forced.exit_code == 0, forced.output
    assert f"wrote {results[name].train_path}" in forced.output and "goals reached" in forced.output
    assert Path(results[name].train_path).read_bytes() != before
    datagen.generate_dataset(name, folder, episodes=episodes, episode_steps=steps, seed=0, workers=1, force=True)
    assert Path(results[name].train_path).read_bytes() == before  # (the module's other tests see seed 0 again)


def child_pids(pid: int) -> set[int]:
    children = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            children |= {int(child) for child in f.read().split()}
    return children


@pytest.mark.parametrize("sig, workers, code", [(signal.SIGTERM, 2, 143), (signal.SIGINT, 1, 130)])
def test_an_interrupted_run_leaves_no_file(tmp_path, sig, workers, code):
    folder = tmp_path / "data"
    total = 1000 + 100  # training and validation episodes: the run would take minutes
    process = subprocess.Popen([DROL_DIAG, "data", "generate", "cube-single-play-v0", "--dataset-dir", str(folder),
                                "--episodes", "1000", "--episode-steps", "200", "--workers", str(workers)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stderr = StreamWatch(process.stderr)
    try:
        # Into the episodes: the progress bar has counted a finished chunk (the folder exists by then).
        assert stderr.wait_for(rf"\b[1-9]\d*/{total}\b", WAIT_S), (process.poll(), stderr.text)
        workers_seen: set[int] = set()  # the pool's workers (and multiprocessing's resource tracker)

        def all_workers_seen() -> bool:
            workers_seen.update(child_pids(process.pid))
            return len(workers_seen) >= workers

        if workers > 1:
            assert wait_until(all_workers_seen), workers_seen
        else:  # one worker generates in the process itself: no pool to leave behind
            assert child_pids(process.pid) == set()
        assert folder.is_dir() and process.poll() is None, stderr.text
        process.send_signal(sig)
        process.wait(WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
    output = stderr.finish()
    assert process.returncode == code, output
    assert "interrupted: nothing written" in output and "Traceback" not in output
    assert not folder.exists() or list(folder.iterdir()) == []  # no final file, no temporary file
    assert workers == 1 or wait_until_gone(workers_seen) == []  # worker processes end with the parent


@pytest.mark.parametrize("args, message", [
    (["cube-sextuple-play-v0"], r"cannot generate 'cube-sextuple-play-v0'; valid names .* cube-single, "),
    (["antmaze-large-navigate-v0"], r"cannot generate 'antmaze-large-navigate-v0' here .*expert policies.*"
                                    r"https://rail\.eecs\.berkeley\.edu/datasets/ogbench/"),
    (["cube-single-play-singletask-task1-v0"], r"no -singletask-taskN part, e\.g\. cube-single-play-v0"),
    (["cube-single-play-v0", "--episodes", "0"], r"--episodes must be a positive integer, got 0"),
    (["cube-single-play-v0", "--episode-steps", "1"], r"--episode-steps must be at least 2"),
    (["cube-single-play-v0", "--workers", "0"], r"--workers must be a positive integer, got 0"),
    (["cube-single-play-v0", "--seed", "-1"], r"--seed must be a non-negative integer"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    folder = tmp_path / "data"
    result = invoke("data", "generate", *args, "--dataset-dir", str(folder), "--no-progress")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]
    assert not folder.exists()


def test_an_unwritable_folder_is_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = invoke("data", "generate", "cube-single-play-v0", "--dataset-dir", str(blocker / "data"),
                    "--episodes", "1", "--no-progress")
    assert result.exit_code == 2 and result.output.startswith("error: cannot write to dataset folder")
    assert len(result.output.strip().splitlines()) == 1 and blocker.read_text() == "not a folder"


def test_data_list_shows_presence_sizes_and_commands(generated, tmp_path, monkeypatch):
    folder, results = generated
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    pen = tmp_path / "minari" / "D4RL" / "pen" / "human-v2" / "data"
    pen.mkdir(parents=True)
    (pen / "main_data.hdf5").write_bytes(b"x" * 2_500_000)
    result = invoke("data", "list", "--dataset-dir", folder)
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.startswith("    ")}
    for name, generation in results.items():
        size = (generation.train_bytes + generation.val_bytes) / 1e6
        assert "present" in lines[name] and f"{size:.1f} MB" in lines[name]
    assert lines["cube-double-noisy-v0"].split()[1:] == ["missing", "drol-diag", "data", "generate",
                                                         "cube-double-noisy-v0"]
    assert len([name for name in lines if name in datagen.RECIPES]) == 20
    assert (f"wget -P {folder} https://rail.eecs.berkeley.edu/datasets/ogbench/antmaze-large-navigate-v0.npz "
            "https://rail.eecs.berkeley.edu/datasets/ogbench/antmaze-large-navigate-v0-val.npz") in lines[
        "antmaze-large-navigate-v0"]
    for name in ("humanoidmaze-giant-stitch-v0", "antsoccer-arena-navigate-v0", "antmaze-teleport-explore-v0"):
        assert "missing" in lines[name]
    assert lines["pen-human-v1"].split()[1:] == ["present", "2.5", "MB", "D4RL/pen/human-v2"]
    assert lines["antmaze-large-diverse-v2"].split()[1:] == ["missing", "minari", "download",
                                                            "D4RL/antmaze/large-diverse-v1"]
    assert result.output.splitlines()[-1] == f"{len(results) + 1} of {len(lines)} present"


def test_data_info_describes_a_file(generated):
    folder, results = generated
    name = "scene-play-v0"
    episodes, steps, obs_dim, _ = TINY[name]
    result = invoke("data", "info", name, "--dataset-dir", folder)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"{episodes} episodes of {steps} rows, {episodes * (steps - 1)} transitions" in out
    assert f"validation: {results[name].val_path}" in out and "1 episode, " in out
    assert f"observations ({episodes * steps}, {obs_dim}) float32" in out and "button_states (200, 2) int64" in out
    actions = read(results[name].train_path)["actions"]
    assert f"action range: [{actions.min():.3f}, {actions.max():.3f}]" in out
    table = out.split("actions per dimension:")[1].split("observations per dimension:")[0].strip().splitlines()[1:]
    assert len(table) == 5
    dim0 = [float(v) for v in table[0].split()[1:]]
    np.testing.assert_allclose(dim0, [actions[:, 0].min(), actions[:, 0].max(), actions[:, 0].mean(),
                                      actions[:, 0].std()], atol=5e-4)
    assert len(out.split("observations per dimension:")[1].strip().splitlines()[1:]) == obs_dim


def test_data_info_errors_name_the_fix(generated):
    folder, _ = generated
    missing = invoke("data", "info", "cube-double-play-v0", "--dataset-dir", folder)
    assert missing.exit_code == 2 and "`drol-diag data generate cube-double-play-v0`" in missing.output
    unknown = invoke("data", "info", "cube-sextuple-play-v0", "--dataset-dir", folder)
    assert unknown.exit_code == 2 and "unknown OGBench dataset 'cube-sextuple-play-v0'" in unknown.output
    assert len(missing.output.strip().splitlines()) == len(unknown.output.strip().splitlines()) == 1


def test_scene_health_check():
    """OGBench's rule: the block must stay in sight (not y >= 0.29; not y <= -0.3 unless 0.06 <= z <= 0.08)."""
    inside = np.array([[0.4, 0.0, 0.02], [0.4, 0.28, 0.02], [0.4, -0.35, 0.07]])
    assert datagen.scene_is_healthy(inside)
    assert not datagen.scene_is_healthy(np.vstack([inside, [0.4, 0.29, 0.02]]))  # too far right
    assert not datagen.scene_is_healthy(np.vstack([inside, [0.4, -0.31, 0.02]]))  # too far left, below the drawer


def test_defaults_are_the_official_sizes():
    plans = {name: datagen.plan_generation(name) for name in datagen.RECIPES}
    sizes = {name: (plan.train_episodes, plan.val_episodes, plan.episode_steps) for name, plan in plans.items()}
    assert sizes["cube-single-play-v0"] == (1000, 100, 1001) and sizes["cube-quadruple-noisy-v0"] == (5000, 500, 1001)
    assert sizes["pointmaze-giant-navigate-v0"] == (500, 50, 2001)
    assert sizes["pointmaze-large-stitch-v0"] == (5000, 500, 201)
    assert datagen.RECIPES["puzzle-4x4-noisy-v0"].p_random_action == 0.2
    assert datagen.RECIPES["scene-noisy-v0"].p_random_action == 0.1
    assert datagen.plan_generation("scene-play-v0", episodes=7).val_episodes == 1  # a tenth, at least one
