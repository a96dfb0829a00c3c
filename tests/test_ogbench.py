"""OGBench single-task loading (from local files only) and episode evaluation, on a tiny dataset
written by the real environment in the official file format."""

from __future__ import annotations

import dataclasses
import os
import shutil

import gymnasium
import numpy as np
import ogbench
import pytest

from drol_diag.tasks import load_task
from drol_diag.tasks.base import VISITED
from drol_diag.tasks.episodes import episode_seed, evaluate_episodes
from drol_diag.tasks.ogbench import ogbench_files
from tests.helpers import TINY_CUBE

TASK_NAME = "cube-single-play-singletask-task1-v0"
DATASET_NAME = TINY_CUBE["dataset_name"]  # cube-single-play-v0
EPISODES, VAL_EPISODES, STEPS = TINY_CUBE["episodes"], TINY_CUBE["val_episodes"], TINY_CUBE["steps"]
TIME_LIMIT = 200  # cube-single


@pytest.fixture(scope="module")
def dataset_folder(tiny_cube_dataset) -> str:
    """The session's tiny dataset (tests/conftest.py): EPISODES x STEPS rows, VAL_EPISODES x STEPS to validate."""
    return str(tiny_cube_dataset)


@pytest.fixture(scope="module")
def task(dataset_folder):
    return load_task(TASK_NAME, dataset_dir=dataset_folder)


def copy_dataset(source: str, target: str, which: tuple[str, ...] = ("train", "val")) -> tuple[str, str]:
    """Copy the chosen files of the tiny dataset into `target`; returns the (train, val) paths there."""
    train_path, val_path = ogbench_files(TASK_NAME, target)
    for split, path in zip(("train", "val"), (train_path, val_path)):
        if split in which:
            shutil.copy(os.path.join(source, os.path.basename(path)), path)
    return train_path, val_path


def zero_policy(observations: np.ndarray) -> np.ndarray:
    return np.zeros((len(observations), 5), np.float32)


def test_load_gives_episode_transitions(task, dataset_folder):
    raw = np.load(ogbench_files(TASK_NAME, dataset_folder)[0])
    rows = EPISODES * (STEPS - 1)  # the loader drops each episode's last row
    assert task.dataset["observations"].shape == (rows, 28)
    assert task.dataset["actions"].shape == (rows, 5)
    assert task.validation["observations"].shape == (VAL_EPISODES * (STEPS - 1), 28)
    for key in ("observations", "actions", "rewards", "masks", "next_observations"):
        assert task.dataset[key].dtype == np.float32 and len(task.dataset[key]) == rows
    kept = ~raw["terminals"]
    starts = np.concatenate([[False], kept[:-1]])  # rows that have a predecessor in the same episode
    np.testing.assert_array_equal(task.dataset["observations"], raw["observations"][kept])
    np.testing.assert_array_equal(task.dataset["next_observations"], raw["observations"][starts])
    np.testing.assert_array_equal(task.dataset["actions"], raw["actions"][kept])  # not clipped
    assert np.isfinite(task.dataset["rewards"]).all() and np.isin(task.dataset["rewards"], [-1.0, 0.0]).all()
    assert np.isin(task.dataset["masks"], [0.0, 1.0]).all()
    assert (task.obs_dim, task.action_dim) == (28, 5)


def test_missing_file_names_it_and_never_downloads(tmp_path, dataset_folder, no_network):
    folder = str(tmp_path / "data")  # does not exist: ogbench's downloader would create it
    with pytest.raises(ValueError, match=r"cube-single-play-v0\.npz") as error:
        load_task(TASK_NAME, dataset_dir=folder)
    assert "\n" not in str(error.value) and "drol-diag data generate cube-single-play-v0" in str(error.value)
    assert not os.path.exists(folder)

    _, val_path = copy_dataset(dataset_folder, str(tmp_path), which=("train",))
    with pytest.raises(ValueError, match=r"cube-single-play-v0-val\.npz") as error:
        load_task(TASK_NAME, dataset_dir=str(tmp_path))
    assert str(error.value).startswith(f"missing OGBench dataset file {val_path};")
    assert sorted(os.listdir(tmp_path)) == ["cube-single-play-v0.npz"]


def test_corrupted_file_is_named(tmp_path, dataset_folder, no_network):
    train_path, _ = copy_dataset(dataset_folder, str(tmp_path), which=("val",))
    with open(train_path, "wb") as file:
        file.write(b"this is not an npz archive" * 10)
    with pytest.raises(ValueError, match=f"bad OGBench dataset file {train_path}") as error:
        load_task(TASK_NAME, dataset_dir=str(tmp_path))
    assert "\n" not in str(error.value)


def test_missing_keys_are_named(tmp_path, dataset_folder, no_network):
    train_path, _ = copy_dataset(dataset_folder, str(tmp_path), which=("val",))
    source = dict(np.load(os.path.join(dataset_folder, os.path.basename(train_path))))
    del source["qpos"]
    np.savez(train_path, **source)
    with pytest.raises(ValueError, match=f"{train_path}: it lacks qpos"):
        load_task(TASK_NAME, dataset_dir=str(tmp_path))


def test_nan_observations_are_rejected(tmp_path, dataset_folder, no_network):
    train_path, _ = copy_dataset(dataset_folder, str(tmp_path), which=("val",))
    source = dict(np.load(os.path.join(dataset_folder, os.path.basename(train_path))))
    source["observations"][4, 3] = np.nan
    np.savez(train_path, **source)
    with pytest.raises(ValueError, match=r"observations contains NaN.*row 4") as error:
        load_task(TASK_NAME, dataset_dir=str(tmp_path))
    assert train_path in str(error.value)


def test_unknown_environment_lists_valid_ones(tmp_path, no_network):
    with pytest.raises(ValueError, match="unknown OGBench single-task environment.*cube-single,") as error:
        load_task("cube-sextuple-play-singletask-task1-v0", dataset_dir=str(tmp_path))
    assert "\n" not in str(error.value)
    assert os.listdir(tmp_path) == []


class EpisodeLengths(gymnasium.Wrapper):
    """Records the length of every episode the wrapped environment runs."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        self.lengths: list[int] = []

    def reset(self, **kwargs):
        self.lengths.append(0)
        return self.env.reset(**kwargs)

    def step(self, action):
        self.lengths[-1] += 1
        return self.env.step(action)


def assert_same_evaluation(found: dict, expected: dict) -> None:
    """The same numbers and visited steps; the observations to 1e-9, not bit for bit: MuJoCo's solver warm start
    carries over between the episodes of a reused environment (measured: 1e-12 in 2 of 28 columns)."""
    assert {k: v for k, v in found.items() if k != VISITED} == {k: v for k, v in expected.items() if k != VISITED}
    visited, reference = found[VISITED], expected[VISITED]
    np.testing.assert_allclose(visited.observations, reference.observations, rtol=0, atol=1e-9)
    assert dataclasses.replace(visited, observations=reference.observations) == reference


def test_evaluate_is_deterministic(task):
    first = task.evaluate(zero_policy, 3, 0)
    assert first["episodes"] == 3 and 0.0 <= first["score"] <= 1.0
    assert 1 <= first["length"] <= TIME_LIMIT and np.isfinite(first["return"])
    assert len(first[VISITED].rewards) == 3 * first["length"]  # every step, for the critic's Monte-Carlo check
    assert_same_evaluation(task.evaluate(zero_policy, 3, 0), first)  # the second call reuses the environments


def test_policy_is_called_once_per_step_for_the_batch(task):
    envs = [EpisodeLengths(ogbench.make_env_and_datasets(TASK_NAME, env_only=True)) for _ in range(3)]
    batch_sizes: list[int] = []

    def counting_zero_policy(observations: np.ndarray) -> np.ndarray:
        assert observations.dtype == np.float32 and observations.shape[1] == 28
        batch_sizes.append(len(observations))
        return zero_policy(observations)

    one_wave = evaluate_episodes(iter(envs).__next__, counting_zero_policy, num_episodes=3, seed=0)
    episode_lengths = [env.lengths[0] for env in envs]  # episode i ran in env i
    assert len(batch_sizes) == max(episode_lengths) and batch_sizes[0] == 3
    assert sum(batch_sizes) == sum(episode_lengths)
    assert_same_evaluation(one_wave, task.evaluate(zero_policy, 3, 0))  # fresh and reused environments agree

    batch_sizes.clear()
    in_waves = evaluate_episodes(iter(envs).__next__, counting_zero_policy, num_episodes=3, seed=0, num_envs=2)
    assert_same_evaluation(in_waves, one_wave)  # each episode's reset seed depends on its index only
    assert batch_sizes[0] == 2 and len(batch_sizes) == max(episode_lengths[:2]) + episode_lengths[2]


class CountdownEnv(gymnasium.Env):
    """Toy env: an episode lasts 1..7 steps (drawn at reset); it succeeds if its last action is positive."""

    observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.remaining = int(self.np_random.integers(1, 8))
        return np.array([self.remaining], np.float32), {}

    def step(self, action):
        assert action.shape == (1,) and -1.0 <= action[0] <= 1.0  # clipped by the evaluator
        self.remaining -= 1
        done = self.remaining == 0
        return np.array([self.remaining], np.float32), 1.0, done, False, {"success": done and action[0] > 0}


def test_evaluate_episodes_success_lengths_and_waves():
    time_limit, num_episodes, num_envs = 5, 10, 3
    make_env = lambda: gymnasium.wrappers.TimeLimit(CountdownEnv(), max_episode_steps=time_limit)
    batch_sizes: list[int] = []

    def too_large_actions(observations: np.ndarray) -> np.ndarray:
        batch_sizes.append(len(observations))
        return np.full((len(observations), 1), 3.0)

    result = evaluate_episodes(make_env, too_large_actions, num_episodes, seed=7, num_envs=num_envs)
    durations = [make_env().reset(seed=episode_seed(7, i))[0][0] for i in range(num_episodes)]
    lengths = np.minimum(durations, time_limit)  # episodes longer than the limit are truncated, unsuccessful
    success = float(np.mean(np.array(durations) <= time_limit))
    visited = result.pop(VISITED)
    assert result == {"score": success, "success": success, "return": float(lengths.mean()),
                      "length": float(lengths.mean()), "episodes": num_episodes}
    np.testing.assert_array_equal(np.bincount(visited.episodes), lengths)  # every step, clipped to the bounds
    assert visited.actions.max() == 1.0 and visited.terminated.sum() == int(np.sum(np.array(durations) <= time_limit))
    waves = [lengths[start:start + num_envs] for start in range(0, num_episodes, num_envs)]
    assert len(batch_sizes) == sum(max(wave) for wave in waves)
    assert set(batch_sizes) == {num_envs}  # one batch shape: rows of ended episodes are padding
