"""The critic held against Monte-Carlo returns (diagnostics.montecarlo, training.evaluation): which steps count,
their discounted returns, and the bias over them."""

from __future__ import annotations

import numpy as np
import pytest

from diagnostics.montecarlo import MC_QUANTITIES, TAIL_WEIGHT, discounted_returns, mc_bias, mean_episode_length
from drol_diag.tasks import Task
from drol_diag.tasks.base import Visited


def visited_episodes(*episodes: tuple[list[float], bool]) -> Visited:
    """A Visited record of episodes given as (rewards, terminated at the end); observations and actions zero."""
    rewards = np.concatenate([np.asarray(r, np.float64) for r, _ in episodes])
    numbers = np.concatenate([np.full(len(r), i) for i, (r, _) in enumerate(episodes)])
    ends = np.concatenate([np.r_[np.zeros(len(r) - 1, bool), ended] for r, ended in episodes])
    m = len(rewards)
    return Visited(np.zeros((m, 2), np.float32), np.zeros((m, 1), np.float32), rewards, numbers, ends)


def test_returns_are_discounted_within_episodes_and_count_only_when_complete():
    long_cut = 500  # cut off by a time limit: a step counts once 0.99^(steps to the end) < TAIL_WEIGHT
    visited = visited_episodes(([1.0, 2.0, 3.0], True), ([5.0, 5.0], False), (np.ones(long_cut), False))
    assert mean_episode_length(visited) == (3 + 2 + long_cut) / 3
    assert mean_episode_length(visited_episodes(([1.0], True), ([2.0], True))) == 1.0  # one-step episodes
    returns, counted = discounted_returns(visited, discount=0.5)
    np.testing.assert_allclose(returns[:5], [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3, 5 + 0.5 * 5, 5])
    assert counted[:3].all() and not counted[3:5].any()  # a terminated episode counts whole; a short cut-off one not
    returns, counted = discounted_returns(visited, discount=0.99)
    steps_left = long_cut - np.arange(long_cut)
    np.testing.assert_array_equal(counted[5:], 0.99 ** steps_left < TAIL_WEIGHT)
    assert counted[5:].sum() == long_cut - 458  # 0.99^459 < 0.01 <= 0.99^458
    np.testing.assert_allclose(returns[5:], (1 - 0.99 ** steps_left) / (1 - 0.99))


def test_bias_over_counted_steps_and_nan_with_none():
    returns, counted = np.array([1.0, -3.0, 10.0]), np.array([True, True, False])
    q_min, q_mean = np.array([2.0, -1.0, 0.0]), np.array([3.0, 0.0, 0.0])
    found = mc_bias(q_min, q_mean, returns, counted)
    assert found["mc_bias"] == pytest.approx(1.5) and found["mc_steps"] == 2  # (1 + 2) / 2: the uncounted step left out
    assert found["mc_abs_return"] == pytest.approx(2.0) and found["mc_bias_normalized"] == pytest.approx(0.75)
    assert found["mc_bias_std"] == pytest.approx(0.5 / 2.0) and found["mc_q_mean"] == pytest.approx(1.5)
    assert found["mc_return"] == pytest.approx(-1.0) and found["mc_q"] == pytest.approx(0.5)
    none = mc_bias(q_min, q_mean, returns, np.zeros(3, bool))
    assert none["mc_steps"] == 0 and all(np.isnan(none[name]) for name in MC_QUANTITIES if name != "mc_steps")


def test_evaluator_without_steps_gives_no_monte_carlo_quantities():
    from drol.config import DROLConfig
    from drol.learner import make_act, make_init
    from drol.methods import make_learner
    from training.evaluation import evaluate_seeds, make_visited_q

    learner = make_learner(DROLConfig(actor_hidden=(8,), critic_hidden=(8,), num_candidates=2), 3, 2, 16)
    states = make_init(learner)(np.arange(2))
    scores_only = Task("scores-only", {}, evaluate=lambda policy, episodes, seed: {"score": 0.5})
    found = evaluate_seeds(scores_only, learner, states, [0, 1], 10, 1, make_act(learner), make_visited_q(learner))
    assert sorted(found) == ["eval_score"]
