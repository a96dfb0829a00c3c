"""The embedded multi-step `corridor` family (drol_diag.tasks.corridor): registered like the one-step
families; its data follow its behaviour; masks, terminations and the recorded episodes are consistent;
and its truth is the behaviour's Q: true_value equals the discounted return of behaviour episodes played
through its own `evaluate`, within their Monte-Carlo error; best_value is the best supported action's; and the
lure towards the corridor's edge rises up to the cliff, where the truth drops to the penalty. No training here (the end-to-end run of an
embedded task is tests/test_truth_tasks.py's)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drol_diag.tasks import check_task, load_task, task_folder_name, task_kind, validate_dataset
from drol_diag.tasks.base import VISITED, undertrained_level
from drol_diag.tasks.corridor import CORRIDOR_TASKS, BehaviourPolicy, CorridorSpec, check_spec, compiled
from drol_diag.tasks.registry import synthetic_reference_levels, synthetic_spec
from training.memory import known_task_shape

NAMES = tuple(CORRIDOR_TASKS)  # corridor-2d, corridor-8d


@functools.cache
def task(name: str):
    return load_task(name)


def returns_to_go(rewards: np.ndarray, episodes: np.ndarray, discount: float) -> np.ndarray:
    """The discounted return from each recorded step to its episode's end; (M,)."""
    returns, later = np.zeros(len(rewards)), 0.0
    for i in range(len(rewards) - 1, -1, -1):
        later = rewards[i] + discount * (later if i + 1 < len(rewards) and episodes[i + 1] == episodes[i] else 0.0)
        returns[i] = later
    return returns


@pytest.mark.parametrize("name", NAMES)
def test_corridor_is_registered_deterministic_and_refuses_bad_names(name):
    first, second, spec = task(name), load_task(name), synthetic_spec(name)
    assert task_kind(name) == "synthetic" and task_folder_name(name) == name and isinstance(spec, CorridorSpec)
    check_task(name)
    for split in ("dataset", "validation"):
        arrays, again = getattr(first, split), getattr(second, split)
        validate_dataset(arrays)
        for key in arrays:
            assert arrays[key].dtype == np.float32 and arrays[key].tobytes() == again[key].tobytes(), (split, key)
    assert first.dataset["actions"].shape == (spec.num_transitions, spec.action_dim)
    assert first.validation["observations"].shape == (spec.num_validation, spec.action_dim + 1)
    assert known_task_shape(name) == (spec.action_dim + 1, spec.action_dim, spec.num_transitions)
    assert callable(first.true_value) and callable(first.best_value) and first.mode_centers is None
    with pytest.raises(ValueError, match=r"unknown task 'corridor-3d'; the corridor family has corridor-2d, "
                                         r"corridor-8d \(embedded tasks: .*corridor-8d\)"):
        check_task("corridor-3d")
    with pytest.raises(ValueError, match=r"corridor task: invalid spec .*; valid: 0 < lateral_half_width <= "
                                         r"lateral_pull"):
        check_spec(CorridorSpec(lateral_half_width=0.6))  # a behaviour that could walk out of the corridor


@pytest.mark.parametrize("name", NAMES)
def test_data_are_behaviour_episodes_with_masks_zero_exactly_at_terminations(name):
    data, spec, corridor = task(name).dataset, synthetic_spec(name), compiled(synthetic_spec(name))
    obs, actions, next_obs = data["observations"], data["actions"], data["next_observations"]
    t = np.rint(obs[:, -1] * spec.horizon)
    # Episodes of H steps in order from t = 0: the next observation is the move, one step later.
    np.testing.assert_array_equal(t, np.arange(len(t)) % spec.horizon)
    np.testing.assert_allclose(next_obs[:, :-1], obs[:, :-1] + spec.step_size * actions, atol=1e-6)
    np.testing.assert_allclose(next_obs[:, -1], (t + 1) / spec.horizon, atol=1e-6)
    np.testing.assert_array_equal(obs[1:][t[1:] > 0], next_obs[:-1][t[1:] > 0])
    # Masks 0 exactly at the horizon: the behaviour never leaves the corridor (so the data hold no penalty).
    np.testing.assert_array_equal(data["masks"] == 0, t == spec.horizon - 1)
    assert np.abs(next_obs[:, 1:-1]).max() <= spec.corridor_width and data["rewards"].min() >= 0
    _, rewards, terminated = corridor.transition(jnp.asarray(obs), jnp.asarray(actions))
    np.testing.assert_allclose(data["rewards"], rewards, rtol=1e-6)
    np.testing.assert_array_equal(data["masks"] == 0, np.asarray(terminated))
    # Leaving the corridor terminates with the penalty, and the truth knows it.
    outward = np.zeros((1, spec.action_dim), np.float32)
    outward[0, 1] = 1.0
    edge = np.zeros((1, spec.action_dim + 1), np.float32)
    edge[0, 1] = spec.corridor_width - 0.5 * spec.step_size
    _, reward, off = corridor.transition(jnp.asarray(edge), jnp.asarray(outward))
    assert bool(off[0]) and float(reward[0]) == -spec.off_corridor_penalty
    assert float(task(name).true_value(edge, outward)[0]) == -spec.off_corridor_penalty


@pytest.mark.parametrize("name", NAMES)
def test_the_data_follow_the_behaviour_density(name):
    t, spec = task(name), synthetic_spec(name)
    obs, actions = t.dataset["observations"], t.dataset["actions"]
    log_p = np.asarray(t.behavior_log_density(obs, actions))
    box = -np.log(spec.forward_high - spec.forward_low) - (spec.action_dim - 1) * np.log(2 * spec.lateral_half_width)
    np.testing.assert_allclose(log_p, box, rtol=1e-6)  # every data action inside the support, where it is flat
    # The data's moments are the density's: a_0 uniform on [low, high], a_i - m_i uniform on [-h, h].
    n, low, high, h = len(actions), spec.forward_low, spec.forward_high, spec.lateral_half_width
    lateral = actions[:, 1:] - np.asarray(compiled(spec).lateral_means(jnp.asarray(obs)))
    assert actions[:, 0].mean() == pytest.approx((low + high) / 2, abs=4 * (high - low) / np.sqrt(12 * n))
    assert actions[:, 0].var() == pytest.approx((high - low) ** 2 / 12, rel=0.03)
    np.testing.assert_allclose(lateral.mean(0), 0.0, atol=4 * h / np.sqrt(3 * n))
    np.testing.assert_allclose(lateral.var(0), h**2 / 3, rtol=0.03)
    # Off the box: no support (too slow, or too far across).
    slow, across = actions[:64].copy(), actions[:64].copy()
    slow[:, 0], across[:, -1] = low - 0.05, actions[:64, -1] - lateral[:64, -1] + 1.1 * h
    for outside in (slow, across):
        assert np.all(np.isneginf(np.asarray(t.behavior_log_density(obs[:64], outside))))
    # In 2-D the density integrates to one (Riemann sum over the action square at a few states).
    if spec.action_dim == 2:
        axis = np.linspace(-1, 1, 801)
        points = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2).astype(np.float32)
        for state in obs[[0, 57, 1234]]:
            density = np.exp(np.asarray(t.behavior_log_density(np.broadcast_to(state, (len(points), 3)), points)))
            assert density.sum() * (axis[1] - axis[0]) ** 2 == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("name", NAMES)
def test_true_value_is_the_behaviours_monte_carlo_return_through_evaluate(name):
    t, spec = task(name), synthetic_spec(name)
    result = t.evaluate(BehaviourPolicy(compiled(spec), 5), 300, 1)
    visited = result[VISITED]
    returns = returns_to_go(visited.rewards, visited.episodes, spec.discount)
    truth = np.asarray(t.true_value(visited.observations, visited.actions), np.float64)
    # Per episode, the mean of Q minus the return over its steps: independent across episodes, so their mean's
    # standard error is the Monte-Carlo error (about 0.08 on returns of 0 to 27 here). A value table 2% off misses
    # by 0.2 or more.
    per_episode = np.bincount(visited.episodes, truth - returns) / np.bincount(visited.episodes)
    error = per_episode.std() / np.sqrt(len(per_episode))
    assert abs(per_episode.mean()) < 3.5 * error and error < 0.1
    # At the first steps too (one sample per episode: standard error about 0.17).
    first = np.flatnonzero(np.r_[True, visited.episodes[1:] != visited.episodes[:-1]])
    assert abs(np.mean(truth[first] - returns[first])) < 3.5 * np.std(returns[first]) / np.sqrt(len(first))
    # The best supported action's value bounds every behaviour action's.
    best = np.asarray(t.best_value(visited.observations))
    assert np.all(best >= truth - 1e-4) and best.mean() > truth.mean() + 0.3  # (one step faster and further out)


@pytest.mark.parametrize("name", NAMES)
def test_evaluate_records_every_step_and_is_deterministic_in_its_seed(name):
    t, spec = task(name), synthetic_spec(name)
    shapes = []
    corridor = compiled(spec)

    def policy(observations):  # fast and drifting across: leaves the corridor, at different steps per start
        shapes.append(observations.shape)
        actions = np.array(corridor.best_action(jnp.asarray(observations)))
        actions[:, 1] = 0.5
        return actions

    result = t.evaluate(policy, 16, 4)
    visited = result[VISITED]
    assert set(shapes) == {(16, spec.action_dim + 1)}  # one batch shape every step
    lengths = np.bincount(visited.episodes, minlength=16)
    assert result["length"] == pytest.approx(lengths.mean()) and lengths.min() < spec.horizon
    assert result["return"] == pytest.approx(np.bincount(visited.episodes, visited.rewards).mean())
    # Each episode contiguous, in order, and terminated exactly at its last step (off the corridor or at H - 1).
    assert np.all(np.diff(visited.episodes) >= 0)
    last = np.r_[visited.episodes[1:] != visited.episodes[:-1], True]
    np.testing.assert_array_equal(visited.terminated, last)
    steps = np.rint(visited.observations[:, -1] * spec.horizon)
    np.testing.assert_array_equal(steps, np.concatenate([np.arange(n) for n in lengths]))
    assert visited.rewards.dtype == np.float64 and np.abs(visited.actions).max() <= 1
    np.testing.assert_array_equal(visited.rewards[last & (lengths[visited.episodes] < spec.horizon)],
                                  -spec.off_corridor_penalty)
    # Deterministic in its seed; another seed starts elsewhere.
    again, other = t.evaluate(policy, 16, 4), t.evaluate(policy, 16, 5)
    assert again["score"] == result["score"] and other["score"] != result["score"]
    np.testing.assert_array_equal(again[VISITED].observations, visited.observations)


def test_reference_levels_oracle_one_and_behaviour_below():
    levels = dict(task("corridor-2d").reference_levels)
    assert levels == synthetic_reference_levels("corridor-2d")
    assert set(levels) == {"random behaviour action", "dataset average", "oracle"}
    assert levels["oracle"] == pytest.approx(1.0, abs=1e-6)
    assert 0.15 < levels["random behaviour action"] < 0.25 and 0.13 < levels["dataset average"] < 0.2
    assert undertrained_level(levels) == ("random behaviour action", levels["random behaviour action"])


@pytest.mark.parametrize("name", NAMES)
def test_best_value_bounds_every_supported_action_and_the_oracle_never_leaves(name):
    t, spec = task(name), synthetic_spec(name)
    corridor, rng = compiled(spec), np.random.default_rng(3)
    states = t.validation["observations"][rng.choice(spec.num_validation, 48, replace=False)]
    best = np.asarray(t.best_value(states))
    means = -spec.lateral_pull * np.clip(states[:, 1:-1] / spec.corridor_width, -1, 1)  # m_i (48, d - 1)
    # 64 supported actions per state, drawn uniformly from the behaviour's box.
    draws, h = 64, spec.lateral_half_width
    repeated = np.repeat(states, draws, axis=0)
    supported = np.concatenate([rng.uniform(spec.forward_low, spec.forward_high, (len(repeated), 1)),
                                np.repeat(means, draws, axis=0) + rng.uniform(-h, h, (len(repeated), spec.action_dim - 1))],
                               axis=1).astype(np.float32)
    assert np.all(np.isfinite(np.asarray(t.behavior_log_density(repeated, supported))))
    sampled = np.asarray(t.true_value(repeated, supported)).reshape(len(states), draws)
    assert np.all(best >= sampled.max(axis=1) - 1e-4) and np.all(best > sampled.mean(axis=1))
    # And a grid of 65 supported lateral steps at the fastest forward step: its best is best_value's (a_1 = m_1 + h).
    grid = np.linspace(-h, h, 65)
    on_grid_actions = np.repeat(np.concatenate([np.full((len(states), 1), spec.forward_high), means], 1), 65, axis=0)
    on_grid_actions[:, 1] += np.tile(grid, len(states))
    on_grid = np.asarray(t.true_value(np.repeat(states, 65, axis=0), on_grid_actions.astype(np.float32)))
    np.testing.assert_allclose(on_grid.reshape(len(states), 65).max(axis=1), best, atol=1e-4)
    # The oracle (best_action every step) never leaves the corridor: score 1, full episodes.
    oracle = jax.jit(corridor.best_action)
    result = t.evaluate(lambda s: np.asarray(oracle(jnp.asarray(s))), 8, 2)
    assert result["score"] == pytest.approx(1.0, abs=1e-6) and result["length"] == spec.horizon


@pytest.mark.parametrize("name", NAMES)
def test_the_lure_rises_towards_the_edge_and_the_truth_drops_to_the_penalty_past_it(name):
    t, spec = task(name), synthetic_spec(name)
    width, step = spec.corridor_width, spec.step_size
    state = np.zeros((1, spec.action_dim + 1), np.float32)
    state[0, 0], state[0, 1], state[0, -1] = 1.0, width - 0.5 * step, 0.2  # near the edge, at step 20
    lateral = np.linspace(-1.0, 1.0, 81, dtype=np.float32)
    actions = np.zeros((len(lateral), spec.action_dim), np.float32)
    actions[:, 0], actions[:, 1] = spec.forward_high, lateral
    states = np.repeat(state, len(lateral), axis=0)
    truth = np.asarray(t.true_value(states, actions))
    landing = state[0, 1] + step * lateral
    inside, supported = landing <= width, np.isfinite(np.asarray(t.behavior_log_density(states, actions)))
    assert supported.any() and (inside & ~supported).any() and (~inside).any()
    # Inside the corridor the truth rises towards the edge, beyond the support too (what tempts a critic on).
    assert np.all(np.diff(truth[inside]) > 0)
    assert truth[inside & ~supported].max() > truth[supported].max() + spec.lateral_gain * step / width
    # One step past the edge: the penalty, and the episode ends.
    np.testing.assert_array_equal(truth[~inside], -spec.off_corridor_penalty)
