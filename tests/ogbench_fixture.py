"""A tiny OGBench dataset in the official file format, written by drol-diag's generator (no download)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from drol_diag.datagen import generate_dataset


def write_tiny_ogbench_dataset(folder: str | os.PathLike, dataset_name: str = "cube-single-play-v0",
                               episodes: int = 3, steps: int = 30, seed: int = 0,
                               val_episodes: int = 1) -> tuple[str, str]:
    """Write <folder>/<dataset_name>.npz (`episodes` x `steps` rows) and <dataset_name>-val.npz
    (`val_episodes` x `steps` rows) with `drol-diag data generate`'s generator (ogbench's environment and
    oracles, in this process), replacing existing files; returns both paths.

    Keys as in the official files: observations (N, obs_dim) float32, actions (N, action_dim) float32,
    terminals (N,) bool, qpos (N, nq) float32, qvel (N, nv) float32 (+ button_states for scene/puzzle).
    After ogbench's loader drops episode ends, the train split has episodes * (steps - 1) transitions.
    """
    result = generate_dataset(dataset_name, os.fspath(folder), episodes=episodes, episode_steps=steps, seed=seed,
                              workers=1, force=True, val_episodes=val_episodes)
    return result.train_path, result.val_path
