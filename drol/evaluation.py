"""Evaluation by real episodes: several environments step together, so a batched policy is called
once per step for all running episodes (FQL's protocol: success = info['success'] at the last step).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium
import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]
MAX_PARALLEL_ENVS = 50  # default number of environments stepping together


def episode_seed(seed: int, episode: int) -> int:
    """Reset seed of episode `episode` of an evaluation with `seed` (deterministic, decorrelated)."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


def evaluate_episodes(
    make_env: Callable[[], gymnasium.Env],
    policy: Policy,
    num_episodes: int,
    seed: int,
    num_envs: int | None = None,
) -> dict[str, float]:
    """Run `num_episodes` episodes and return their mean success, return and length.

    Up to `num_envs` environments (default min(num_episodes, 50)) come from `make_env`; episodes run
    in waves of that many. Within a wave the policy gets the observations of all running episodes
    at once, float32 (n, obs_dim), and returns actions (n, action_dim), which are clipped to the
    action space before stepping. Episode i is reset with `episode_seed(seed, i)`, so results depend
    on `seed` only (not on `num_envs`). An episode ends at `terminated or truncated` (the TimeLimit
    truncates at the time limit; OGBench single-task environments terminate at success); its success
    is info['success'] of its last step (0 if the env reports none). The environments are not
    closed, so a `make_env` that hands out cached environments can reuse them across calls.

    Returns {"score" and "success": mean success in [0, 1], "return": mean episode return,
             "length": mean episode length, "episodes": num_episodes}.
    """
    if num_episodes < 1:
        raise ValueError(f"num_episodes is {num_episodes}; at least 1 episode is needed")
    num_envs = min(num_episodes, num_envs or MAX_PARALLEL_ENVS)
    if num_envs < 1:
        raise ValueError(f"num_envs is {num_envs}; at least 1 environment is needed")
    envs = [make_env() for _ in range(num_envs)]
    action_low, action_high = envs[0].action_space.low, envs[0].action_space.high
    successes = np.zeros(num_episodes)  # (num_episodes,)
    returns = np.zeros(num_episodes)
    lengths = np.zeros(num_episodes, dtype=np.int64)

    for wave_start in range(0, num_episodes, num_envs):
        episodes = list(range(wave_start, min(wave_start + num_envs, num_episodes)))  # this wave's episodes
        observations = [env.reset(seed=episode_seed(seed, episode))[0] for env, episode in zip(envs, episodes)]
        running = list(range(len(episodes)))  # slots (env index within the wave) still running
        while running:
            batch = np.stack([observations[slot] for slot in running]).astype(np.float32)  # (n, obs_dim)
            actions = np.asarray(policy(batch), dtype=np.float32)  # (n, action_dim)
            if actions.shape != (len(running), *action_low.shape):
                raise ValueError(f"policy returned actions of shape {actions.shape} for {len(running)} observations; "
                                 f"expected {(len(running), *action_low.shape)}")
            actions = np.clip(actions, action_low, action_high)
            still_running = []
            for slot, action in zip(running, actions):
                episode = episodes[slot]
                observations[slot], reward, terminated, truncated, info = envs[slot].step(action)
                returns[episode] += float(reward)
                lengths[episode] += 1
                if terminated or truncated:
                    successes[episode] = float(info.get("success", 0.0))
                else:
                    still_running.append(slot)
            running = still_running

    return {"score": float(successes.mean()), "success": float(successes.mean()), "return": float(returns.mean()),
            "length": float(lengths.mean()), "episodes": num_episodes}
