"""A tiny OGBench dataset in the official file format, written from the real environment (no download)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium
import numpy as np
import ogbench  # noqa: F401  (registers the environments)

MANIPULATION_ENVS = ("cube", "scene", "puzzle")


def _record_episodes(env: gymnasium.Env, episodes: int, steps: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`episodes` episodes of `steps` rows each, uniform random actions, in the official layout.

    Row t of an episode holds observation o_t, the action a_t taken there, and the simulator state (qpos, qvel,
    and button_states where the env has buttons) that o_t shows; terminals is 1 on each episode's last row
    (whose action has no next observation: ogbench's loader drops that row).
    """
    rows: dict[str, list] = {"observations": [], "actions": [], "terminals": [], "qpos": [], "qvel": []}
    for _ in range(episodes):
        observation, info = env.reset(seed=int(rng.integers(2**31)))
        for step in range(steps):
            action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
            rows["observations"].append(observation)
            rows["actions"].append(action)
            rows["terminals"].append(step == steps - 1)
            rows["qpos"].append(info["qpos"])  # the state of `observation`: the info of the reset / previous step
            rows["qvel"].append(info["qvel"])
            if "button_states" in info:
                rows.setdefault("button_states", []).append(info["button_states"])
            observation, _, _, _, info = env.step(action)
    dtypes = {"terminals": bool, "button_states": np.int64}
    return {key: np.asarray(values, dtype=dtypes.get(key, np.float32)) for key, values in rows.items()}


def write_tiny_ogbench_dataset(folder: str | os.PathLike, dataset_name: str = "cube-single-play-v0",
                               episodes: int = 3, steps: int = 30, seed: int = 0,
                               val_episodes: int = 1) -> tuple[str, str]:
    """Write <folder>/<dataset_name>.npz (`episodes` x `steps` rows) and <dataset_name>-val.npz
    (`val_episodes` x `steps` rows) from the real environment with random actions; returns both paths.

    Keys as in the official files: observations (N, obs_dim) float32, actions (N, action_dim) float32,
    terminals (N,) bool, qpos (N, nq) float32, qvel (N, nv) float32 (+ button_states for scene/puzzle).
    After ogbench's loader drops episode ends, the train split has episodes * (steps - 1) transitions.
    """
    parts = dataset_name.split("-")
    env_name = "-".join(parts[:-2] + parts[-1:])  # drop the dataset type, as ogbench does: cube-single-v0
    env_kwargs = {"terminate_at_goal": False}
    if env_name.startswith(MANIPULATION_ENVS):
        env_kwargs["mode"] = "data_collection"  # random initial scenes, as the official play data
    env = gymnasium.make(env_name, max_episode_steps=steps, **env_kwargs)
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    train_path = os.path.join(folder, f"{dataset_name}.npz")
    val_path = os.path.join(folder, f"{dataset_name}-val.npz")
    np.savez_compressed(train_path, **_record_episodes(env, episodes, steps, rng))
    np.savez_compressed(val_path, **_record_episodes(env, val_episodes, steps, rng))
    env.close()
    return train_path, val_path
