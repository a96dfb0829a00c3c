"""Minari datasets as tasks (drol_diag.tasks.minari): real Minari datasets written by this test into a
temporary MINARI_DATASETS_PATH (a DataCollector around InvertedPendulum-v5, and datasets built from
episode buffers), loaded, trained on through the CLI, evaluated in the recovered environment; missing
datasets fail fast without touching the network; D4RL names, presets and the antmaze conventions.

gymnasium-robotics is not needed: the antmaze conventions are checked on a dataset whose id is
D4RL/antmaze/umaze-v1 but whose data come from buffers (dict observations, no environment, so no
evaluation); the real AntMaze evaluation (continuing_task=False) is not run here.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import warnings

import gymnasium
import minari
import numpy as np
import pytest
import xarray as xr
from minari.data_collector.episode_buffer import EpisodeBuffer

from drol_diag.settings import family_preset, resolve
from drol_diag.tasks import load_task, task_folder_name, task_kind
from drol_diag.tasks.minari import D4RL_NAMES, minari_dataset_path, minari_id
from tests.helpers import invoke

PENDULUM_ID = "drol-test/pendulum/random-v0"
ANTMAZE_ID = "D4RL/antmaze/umaze-v1"
DICT_ID = "drol-test/dict/obs-v0"
COLLECT_STEPS, EVAL_STEPS = 8, 3  # time limits of the collection and of the evaluation environment
REF_MIN, REF_MAX = 0.0, 8.0  # InvertedPendulum-v5 pays 1 per step alive: an 8-step episode is the maximum
AUTHOR = dict(algorithm_name="random", author="drol-diag tests", author_email="tests@example.org",
              code_permalink="tests/test_minari.py", description="drol-diag test data")


def write_pendulum_dataset() -> None:
    """30 random InvertedPendulum-v5 episodes cut at 8 steps (both terminations and truncations), an
    evaluation environment cut at 3 steps, reference scores 0 and 8."""
    env = minari.DataCollector(gymnasium.make("InvertedPendulum-v5", max_episode_steps=COLLECT_STEPS))
    rng = np.random.default_rng(0)
    for episode in range(30):
        env.reset(seed=episode)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(rng.uniform(-3, 3, size=1).astype(np.float32))
            done = terminated or truncated
    eval_spec = copy.deepcopy(gymnasium.spec("InvertedPendulum-v5"))
    eval_spec.max_episode_steps = EVAL_STEPS
    env.create_dataset(PENDULUM_ID, eval_env=eval_spec, ref_min_score=REF_MIN, ref_max_score=REF_MAX, **AUTHOR)


def goal_dict_space() -> gymnasium.spaces.Dict:
    box = lambda n: gymnasium.spaces.Box(-np.inf, np.inf, (n,), np.float64)
    return gymnasium.spaces.Dict({"observation": box(3), "achieved_goal": box(2), "desired_goal": box(2)})


def write_buffer_dataset(dataset_id: str, episodes: int = 4, steps: int = 5) -> None:
    """Episodes with antmaze-like dict observations (observation 3, achieved_goal 2, desired_goal 2),
    actions (2,), rewards 0/1, no environment; the last episode terminates, the others are truncated."""
    rng = np.random.default_rng(1)
    buffers = []
    for i in range(episodes):
        observations = {key: rng.normal(size=(steps + 1, space.shape[0]))
                        for key, space in goal_dict_space().spaces.items()}
        buffers.append(EpisodeBuffer(
            id=i, observations=observations, actions=rng.uniform(-1, 1, (steps, 2)).astype(np.float32),
            rewards=(rng.uniform(size=steps) < 0.3).astype(np.float64), terminations=[False] * (steps - 1) + [i == 3],
            truncations=[False] * (steps - 1) + [i != 3], infos={}))
    minari.create_dataset_from_buffers(dataset_id, buffers, observation_space=goal_dict_space(),
                                       action_space=gymnasium.spaces.Box(-1, 1, (2,), np.float32), **AUTHOR)


@pytest.fixture(scope="module")
def minari_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # minari's notes about dataset sizes and missing eval envs
            write_pendulum_dataset()
            write_buffer_dataset(ANTMAZE_ID)
            write_buffer_dataset(DICT_ID)
        yield root


def test_episodes_become_transitions(minari_root):
    with pytest.warns(UserWarning, match=r"DROL's actions lie in \[-1, 1\]"):  # InvertedPendulum acts in [-3, 3]
        task = load_task(PENDULUM_ID)
    episodes = list(minari.MinariDataset(os.path.join(minari_dataset_path(PENDULUM_ID), "data")).iterate_episodes())
    terminations = np.concatenate([e.terminations for e in episodes])
    truncations = np.concatenate([e.truncations for e in episodes])
    assert terminations.any() and truncations.any()  # both ways of ending are exercised
    data = task.dataset
    assert len(data["actions"]) == sum(len(e.rewards) for e in episodes)  # no row dropped
    np.testing.assert_allclose(data["observations"], np.concatenate([e.observations[:-1] for e in episodes]), rtol=1e-6)
    np.testing.assert_allclose(data["next_observations"], np.concatenate([e.observations[1:] for e in episodes]),
                               rtol=1e-6)
    np.testing.assert_allclose(data["actions"], np.concatenate([e.actions for e in episodes]).reshape(-1, 1))
    np.testing.assert_array_equal(data["rewards"], np.concatenate([e.rewards for e in episodes]))
    np.testing.assert_array_equal(data["masks"], 1.0 - terminations)
    np.testing.assert_array_equal(data["episode_ends"], terminations | truncations)
    ends = np.cumsum([len(e.rewards) for e in episodes]) - 1
    np.testing.assert_array_equal(np.flatnonzero(data["episode_ends"]), ends)  # exactly each episode's last row


@pytest.mark.filterwarnings("ignore:Minari dataset drol-test/pendulum/random-v0.*actions range over")
def test_trains_through_the_cli_and_scores_in_the_recovered_eval_env(minari_root, tmp_path):
    out = tmp_path / "runs"
    result = invoke("run", "--task", PENDULUM_ID, "--profile", "smoke", "--steps", "20", "--seeds", "0",
                    "--log-interval", "10", "--eval-interval", "10", "--eval-episodes", "2",
                    "--checkpoint-interval", "20", "--no-diagnostics", "--no-progress", "--out", str(out))
    assert result.exit_code == 0, result.output
    run_dir = out / "drol-test-pendulum-random-v0" / "dynamic-k16"  # '/' made folder-safe
    assert json.loads((run_dir / "config.json").read_text())["run"]["task"] == PENDULUM_ID  # the real name
    logs = xr.open_zarr((run_dir / "logs.zarr").resolve(), consolidated=False)
    assert logs.attrs["task"] == PENDULUM_ID
    # The evaluation environment (recover_environment(eval_env=True)) stops at 3 steps, the collection one
    # at 8: every episode lasts 3 steps (the pendulum does not fall that soon), return 3 = 3/8 normalised.
    np.testing.assert_allclose(logs.eval_length.values, EVAL_STEPS)
    np.testing.assert_allclose(logs.eval_return.values, EVAL_STEPS)
    np.testing.assert_allclose(logs.eval_score.values, (EVAL_STEPS - REF_MIN) / (REF_MAX - REF_MIN))
    np.testing.assert_allclose(logs.eval_normalized_score.values, 100 * EVAL_STEPS / REF_MAX)
    assert "seed 0: score 0.375" in result.output


@pytest.mark.parametrize("name, dataset_id", [("D4RL/pen/human-v2", "D4RL/pen/human-v2"),
                                              ("antmaze-large-diverse-v2", "D4RL/antmaze/large-diverse-v1")])
def test_missing_dataset_is_one_line_with_the_download_command_and_no_network(tmp_path, monkeypatch, no_network,
                                                                               name, dataset_id):
    root = tmp_path / "absent-root"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    result = invoke("run", "--task", name, "--out", str(tmp_path / "runs"))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert f"`minari download {dataset_id}`" in lines[0] and str(root) in lines[0]
    assert no_network == []
    assert not root.exists() and not (tmp_path / "runs").exists()  # minari's path helper (which creates it) unused
    sweep = invoke("sweep", "--tasks", f"modes-2d,{name}", "--out", str(tmp_path / "sweep"), "--dry-run")
    assert sweep.exit_code == 2 and f"minari download {dataset_id}" in sweep.output and no_network == []


def test_d4rl_names_map_to_minari_ids_and_take_the_d4rl_presets():
    assert D4RL_NAMES["antmaze-umaze-v2"] == "D4RL/antmaze/umaze-v1"
    assert D4RL_NAMES["antmaze-medium-diverse-v2"] == "D4RL/antmaze/medium-diverse-v1"
    assert D4RL_NAMES["relocate-cloned-v1"] == "D4RL/relocate/cloned-v2"
    assert len(D4RL_NAMES) == 6 + 4 * 3
    for name, dataset_id in D4RL_NAMES.items():
        assert minari_id(name) == dataset_id
        assert task_kind(dataset_id) == task_kind(name) == "d4rl"
        assert family_preset(dataset_id) == family_preset(name)
        assert family_preset(dataset_id, "fql") == family_preset(name, "fql")
    learner, run = resolve(ANTMAZE_ID, "auto")
    assert (learner.bc_coef, learner.num_candidates, run.steps) == (0.3, 2, 500_000)
    assert resolve("D4RL/antmaze/large-play-v1", "auto", ablation="fql")[0].alpha == 3.0
    assert (task_kind("mujoco/hopper/medium-v0"), family_preset("mujoco/hopper/medium-v0")) == ("minari", {})
    assert task_folder_name(ANTMAZE_ID) == "D4RL-antmaze-umaze-v1"
    assert task_folder_name("antmaze-umaze-v2") == "antmaze-umaze-v2"


def test_antmaze_rewards_shift_and_d4rl_observation_layout(minari_root):
    by_name, by_id = load_task("antmaze-umaze-v2"), load_task(ANTMAZE_ID)
    episodes = list(minari.MinariDataset(os.path.join(minari_dataset_path(ANTMAZE_ID), "data")).iterate_episodes())
    stored_rewards = np.concatenate([e.rewards for e in episodes])
    for task in (by_name, by_id):
        np.testing.assert_array_equal(task.dataset["rewards"], stored_rewards - 1.0)  # FQL's antmaze convention
        expected = np.concatenate([np.concatenate([e.observations["achieved_goal"][:-1], e.observations["observation"][:-1]],
                                                  axis=1) for e in episodes])
        np.testing.assert_allclose(task.dataset["observations"], expected, rtol=1e-6)  # D4RL's 29 = xy + 27
        assert task.evaluate is None  # no environment in this dataset
        np.testing.assert_array_equal(task.dataset["masks"], np.concatenate([1.0 - e.terminations for e in episodes]))
    # The same data under another id: no shift, every key in sorted order (goal included).
    other = load_task(DICT_ID)
    np.testing.assert_array_equal(other.dataset["rewards"], stored_rewards)
    keys = ("achieved_goal", "desired_goal", "observation")
    np.testing.assert_allclose(other.dataset["next_observations"], np.concatenate(
        [np.concatenate([e.observations[k][1:] for k in keys], axis=1) for e in episodes]), rtol=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("gymnasium_robotics") is not None,
                    reason="gymnasium-robotics is installed here")
def test_missing_gymnasium_robotics_is_one_line(minari_root, tmp_path, monkeypatch):
    """A D4RL antmaze dataset as Minari ships it names an AntMaze environment of gymnasium-robotics."""
    root = tmp_path / "root"
    (root / "D4RL" / "antmaze").mkdir(parents=True)
    source = minari_root / ANTMAZE_ID
    target = root / "D4RL" / "antmaze" / "medium-play-v1"
    (target / "data").mkdir(parents=True)  # the fixture's data, with the metadata Minari's antmaze has
    metadata = json.loads((source / "data" / "metadata.json").read_text())
    metadata.update(dataset_id="D4RL/antmaze/medium-play-v1", eval_env_spec=json.dumps(
        {"id": "AntMaze_Medium-v4", "entry_point": "gymnasium_robotics.envs.maze.ant_maze_v4:AntMazeEnv",
         "max_episode_steps": 1000, "kwargs": {"continuing_task": True}}))
    (target / "data" / "metadata.json").write_text(json.dumps(metadata))
    os.symlink(source / "data" / "main_data.hdf5", target / "data" / "main_data.hdf5")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    result = invoke("run", "--task", "antmaze-medium-play-v2", "--out", str(tmp_path / "runs"))
    assert result.exit_code == 2
    assert result.output.strip() == ("error: D4RL/antmaze/medium-play-v1 is evaluated in AntMaze_Medium-v4, which "
                                     "needs the Python package gymnasium_robotics (not installed): pip install "
                                     "'drol-diag[d4rl]' (gymnasium-robotics)")
