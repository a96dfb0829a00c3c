"""The critic held against the Monte-Carlo returns of the policy's own evaluation episodes (TD3's and REDQ's
bias check): at every visited (s, a), Q(s, a) against the discounted return that followed it.

Which steps count: a step's return is complete when its episode truly terminated, or when the steps a time limit
cut off would carry less than TAIL_WEIGHT of its discount weight (gamma^(steps left) < TAIL_WEIGHT, so the missing
tail is at most 1% of the return scale r_max / (1 - gamma)). REDQ drops a fixed number of steps before the limit
instead, which is right for one discount only; this rule follows the run's discount. Under discount 0.99 a step
counts in a cut-off episode when at least 459 steps followed it: where episodes are shorter than that (OGBench's
cube-single: 200), only terminated episodes count, which the reader must know (`mc_steps`, and the report says so).
"""

from __future__ import annotations

import numpy as np

from drol_diag.tasks.base import Visited

TAIL_WEIGHT = 0.01  # a cut-off step counts when the lost tail's share of its discount weight is below this
MC_QUANTITIES = ("mc_return", "mc_abs_return", "mc_q", "mc_q_mean", "mc_bias", "mc_bias_normalized", "mc_bias_std",
                 "mc_steps")


def discounted_returns(visited: Visited, discount: float) -> tuple[np.ndarray, np.ndarray]:
    """Per visited step, its discounted return-to-go within its episode (M,) float64, and whether it counts
    (M,) bool (module docstring). All episodes at once, as (episodes, longest episode) rows."""
    m = len(visited.rewards)
    starts = np.flatnonzero(np.r_[True, visited.episodes[1:] != visited.episodes[:-1]])
    lengths = np.diff(np.r_[starts, m])
    episode, position = np.repeat(np.arange(len(starts)), lengths), np.arange(m) - np.repeat(starts, lengths)
    rewards = np.zeros((len(starts), lengths.max()))
    rewards[episode, position] = visited.rewards  # (zeros after an episode's end add nothing to its returns)
    returns = np.zeros_like(rewards)  # G_t = r_t + discount G_{t+1}, all episodes a column at a time
    returns[:, -1] = rewards[:, -1]
    for t in range(rewards.shape[1] - 2, -1, -1):
        returns[:, t] = rewards[:, t] + discount * returns[:, t + 1]
    returns = returns[episode, position]
    steps_left = (lengths[episode] - position).astype(np.float64)  # from t to the episode's end, t included
    terminated = visited.terminated[starts + lengths - 1][episode]  # (its episode's last step)
    return returns, terminated | (discount ** steps_left < TAIL_WEIGHT)


def mean_episode_length(visited: Visited) -> float:
    """Mean steps per episode of the record (1.0: one-step episodes, whose Monte-Carlo return is the reward)."""
    return len(visited.episodes) / len(np.unique(visited.episodes))


def mc_bias(q_min: np.ndarray, q_mean: np.ndarray, returns: np.ndarray, counted: np.ndarray) -> dict[str, float]:
    """MC_QUANTITIES over the counted steps, from the critic's ensemble min and mean at each visited (s, a) and
    the returns (all (M,)). The bias is the min's (the value the actor climbs, as `critic_bias`); normalised by
    the mean absolute return, as REDQ does. No counted step: NaN for each, mc_steps 0."""
    steps = int(counted.sum())
    if steps == 0:
        return {**{name: float("nan") for name in MC_QUANTITIES}, "mc_steps": 0.0}
    bias, achieved = q_min[counted] - returns[counted], returns[counted]
    scale = float(np.mean(np.abs(achieved)))
    with np.errstate(invalid="ignore", divide="ignore"):
        normalized, spread = np.float64(bias.mean()) / scale, np.float64(bias.std()) / scale
    return {"mc_return": float(achieved.mean()), "mc_abs_return": scale, "mc_q": float(q_min[counted].mean()),
            "mc_q_mean": float(q_mean[counted].mean()), "mc_bias": float(bias.mean()),
            "mc_bias_normalized": float(normalized), "mc_bias_std": float(spread), "mc_steps": float(steps)}
