"""Ground truth in the Task interface (true_value, best_value, behavior_log_density, mode_centers) and the embedded
one-step families that have it: `modes`, `arc` (a continuous supported arc) and `cliff` (a value
cliff at the support's edge). Closed forms are checked against the data they describe: the density
integrates to one and is the data's (the data's mean log-density equals the density's own), the
reward is the true value, the score is the true value relative to the best, the geometry is the one
documented; and `drol-diag run --task arc-2d` runs end to end."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diagnostics.montecarlo import discounted_returns
from drol_diag.settings.presets import profile_settings
from drol_diag.tasks import check_task, load_task, task_folder_name, task_kind, validate_dataset
from drol_diag.tasks.arc import ArcGeometry
from drol_diag.tasks.base import VISITED, undertrained_level
from drol_diag.tasks.cliff import CliffGeometry
from drol_diag.tasks.modes import ModesGeometry
from drol_diag.tasks.registry import synthetic_spec
from tests.helpers import invoke
from training.memory import known_task_shape

TRUTH_TASKS = ("arc-2d", "arc-5d", "arc-8d", "arc-21d", "cliff-2d", "cliff-5d", "cliff-8d", "cliff-21d")
EMBEDDED = ("modes-2d", *TRUTH_TASKS)  # modes-5d: the same code as modes-2d (kept out for the suite's time)
# Importance sampling's integral spreads +-0.03 at 32k draws in 8-D, +-0.1 in 21-D (measured): the 21-D
# densities are the 8-D code with more Gaussian dims, so the integral is checked up to 8-D only.
DENSITY_CHECKED = tuple(name for name in EMBEDDED if not name.endswith("-21d"))
GEOMETRIES = {"modes": ModesGeometry, "arc": ArcGeometry, "cliff": CliffGeometry}
# The reward and score checks run a family's one code at every dimension: each family and each dimension once, arc
# with and without lift dims (left out: arc-8d and arc-21d, 5-D's code with more dims, ~25 s; cliff-2d and -5d).
VALUE_CHECKED = ("modes-2d", "arc-2d", "arc-5d", "cliff-8d", "cliff-21d")


@functools.cache
def task(name: str):
    return load_task(name)


def geometry(name: str):
    return GEOMETRIES[name.split("-")[0]](synthetic_spec(name))


def some_states(name: str, n: int) -> jnp.ndarray:
    return jnp.asarray(task(name).validation["observations"][:n])


def density_integral_and_mean_log_density(name: str, states: jnp.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per state: the integral of exp(log p(. | s)) over actions and E_p[log p] (self-normalised), on a
    grid in 2-D and by importance sampling in higher dimensions (proposal: Gaussians of std 0.06 around
    512 behaviour draws at the state, an exactly known density). One compiled program per task."""
    log_density, g = task(name).behavior_log_density, geometry(name)
    d = synthetic_spec(name).action_dim

    @jax.jit
    def estimate(state: jnp.ndarray, key: jax.Array) -> tuple[jnp.ndarray, jnp.ndarray]:
        if d == 2:
            step = 0.004
            axis = jnp.arange(-1 + step / 2, 1, step)
            points = jnp.stack(jnp.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
            weights = jnp.full(len(points), step**2)  # cell areas
        else:
            width, n = 0.06, 32_768
            draw_key, pick_key, noise_key = jax.random.split(key, 3)
            centres = jnp.clip(g.sample_actions(draw_key, jnp.broadcast_to(state, (512, len(state))))[0], -1, 1)
            points = centres[jax.random.randint(pick_key, (n,), 0, 512)] + width * jax.random.normal(noise_key, (n, d))
            sq = jnp.sum(points**2, -1)[:, None] - 2 * points @ centres.T + jnp.sum(centres**2, -1)[None]  # (n, 512)
            log_q = jax.scipy.special.logsumexp(-sq / (2 * width**2), axis=1) - jnp.log(512.0) \
                - 0.5 * d * jnp.log(2 * jnp.pi * width**2)
            weights = jnp.exp(-log_q) / n  # importance weights 1 / (n q)
        log_p = log_density(jnp.broadcast_to(state, (len(points), len(state))), points)
        p = jnp.exp(log_p)
        integral = jnp.sum(p * weights)
        return integral, jnp.sum(jnp.where(p > 0, p * log_p, 0.0) * weights) / integral

    results = [estimate(state, jax.random.PRNGKey(100 + i)) for i, state in enumerate(states)]
    return np.array([float(r[0]) for r in results]), np.array([float(r[1]) for r in results])


# ------------------------------------------------------------------------------------------------
# The interface and generation


@pytest.mark.parametrize("name", TRUTH_TASKS)
def test_new_families_are_registered_deterministic_and_carry_their_truth(name):
    first, second = task(name), load_task(name)
    assert task_kind(name) == "synthetic" and task_folder_name(name) == name
    check_task(name)
    for split in ("dataset", "validation"):
        arrays, again = getattr(first, split), getattr(second, split)
        assert set(arrays) == set(again)
        for key in arrays:
            assert arrays[key].dtype == np.float32 and arrays[key].tobytes() == again[key].tobytes(), (split, key)
    validate_dataset(first.dataset)
    spec = synthetic_spec(name)
    assert first.dataset["actions"].shape == (spec.num_transitions, spec.action_dim)
    assert np.all(first.dataset["masks"] == 0) and np.abs(first.dataset["actions"]).max() <= 1.0
    assert callable(first.true_value) and callable(first.behavior_log_density) and first.mode_centers is None
    # Sized, preset and planned like modes: the demo sizing under `auto`, the exact shape for memory plans.
    assert profile_settings("auto", name) == profile_settings("auto", "modes-2d")
    assert profile_settings("paper", name)["steps"] == profile_settings("paper", "modes-2d")["steps"]
    assert known_task_shape(name) == (spec.obs_dim, spec.action_dim, spec.num_transitions)
    with pytest.raises(ValueError, match=r"unknown task 'arc-3d'; the arc family has arc-2d, arc-5d, arc-8d, arc-21d"):
        check_task("arc-3d")


@pytest.mark.parametrize("name", DENSITY_CHECKED)
def test_behaviour_density_integrates_to_one_and_is_the_density_of_the_data(name):
    data = task(name).dataset
    integrals, expected_log_density = density_integral_and_mean_log_density(name, some_states(name, 3))
    on_grid = synthetic_spec(name).action_dim == 2  # then E_p[log p] is exact; else importance sampled
    np.testing.assert_allclose(integrals, 1.0, atol=0.01 if on_grid else 0.05)
    # Every state is a rigid motion of one geometry, so has the same E_p[log p], which the data's own
    # mean log-density estimates too (standard error 0.01). A density with its noise 20% off misses it
    # by 0.15 nats or more in 2-D, 0.6 in 5-D (the arc's decay along the curve: its own test).
    log_p = np.asarray(task(name).behavior_log_density(data["observations"], data["actions"]))
    assert np.isfinite(log_p).all()  # every data action is supported
    assert log_p.mean() == pytest.approx(expected_log_density.mean(), abs=0.04 if on_grid else 0.1)


@pytest.mark.parametrize("name", VALUE_CHECKED)
def test_true_value_is_the_reward_and_the_score_is_it_relative_to_the_best(name):
    t, g = task(name), geometry(name)
    data = t.dataset
    np.testing.assert_allclose(t.true_value(data["observations"], data["actions"]), data["rewards"], rtol=1e-5,
                               atol=1e-6)
    # Pure jnp on numpy input (above), jit-safe (evaluate compiles true_value, the density test the
    # log-density), with finite gradients at the data (the diagnostics need them).
    obs, actions = data["observations"][:256], data["actions"][:256]
    for function in (t.true_value, t.behavior_log_density):
        assert np.isfinite(jax.grad(lambda a, f=function: jnp.sum(f(obs, a)))(jnp.asarray(actions))).all()
    # evaluate = mean true value of the policy's actions over the mean best value, on its states.
    weights = np.random.default_rng(0).normal(size=(t.obs_dim, t.action_dim))
    seen = []
    policy = lambda states: seen.append(states) or np.tanh(states @ weights).astype(np.float32)
    evaluated = t.evaluate(policy, 1, 3)
    states = jnp.asarray(seen[0])
    truth = jnp.mean(t.true_value(states, policy(states))) / jnp.mean(g.best_value(states))
    assert evaluated["score"] == pytest.approx(float(truth), rel=1e-5)
    # Each state is a one-step episode: its Monte-Carlo return is the true value at the deployed action.
    visited = evaluated[VISITED]
    returns, counted = discounted_returns(visited, discount=0.99)
    np.testing.assert_array_equal(visited.observations, seen[0])
    np.testing.assert_allclose(returns, t.true_value(states, policy(states)), rtol=1e-5, atol=1e-6)
    assert counted.all() and len(np.unique(visited.episodes)) == len(states)
    # The task hands over that best value (the oracle's, per state): at least every data action's value.
    np.testing.assert_allclose(t.best_value(states), g.best_value(states), rtol=1e-6)
    assert np.all(np.asarray(t.best_value(obs)) >= np.asarray(t.true_value(obs, actions)) - 1e-6)
    assert t.evaluate(lambda s: np.asarray(g.best_action(jnp.asarray(s))), 1, 3)["score"] == pytest.approx(1, abs=1e-5)


def test_modes_task_knows_its_mode_centres():
    name = "modes-2d"
    t, g = task(name), geometry(name)
    states = some_states(name, 7)
    centres = np.asarray(t.mode_centers(states))
    assert centres.shape == (7, g.spec.num_modes, g.spec.action_dim)
    np.testing.assert_allclose(centres, g.centres(states))
    # The data's nearest centre is its mode; the best centre is the oracle.
    data = t.dataset
    nearest = np.argmin(np.linalg.norm(data["actions"][:500, None] - np.asarray(t.mode_centers(data["observations"][:500])),
                                       axis=-1), axis=1)
    np.testing.assert_array_equal(nearest, data["modes"][:500])


# ------------------------------------------------------------------------------------------------
# Reference levels and geometry


@pytest.mark.parametrize("name", TRUTH_TASKS)
def test_reference_levels_oracle_one_and_random_behaviour_about_half(name):
    t, spec = task(name), synthetic_spec(name)
    levels = dict(t.reference_levels)
    assert set(levels) == {"random behaviour action", "dataset average", "oracle"}
    assert levels["oracle"] == pytest.approx(1.0, abs=1e-5)
    assert levels["dataset average"] < 0.8 and 0.4 < levels["random behaviour action"] < 0.6
    # The random-behaviour level is the data's own mean reward (another sample of states and actions).
    assert levels["random behaviour action"] == pytest.approx(t.dataset["rewards"].mean() / spec.top_value, abs=0.02)
    # Below the random behaviour action a run is undertrained (the report's warning), as below a random mode on modes.
    assert undertrained_level(levels) == ("random behaviour action", levels["random behaviour action"])
    assert undertrained_level(task("modes-2d").reference_levels)[0] == "random supported mode"


@pytest.mark.parametrize("name", ["arc-5d"])  # (arc-2d: the same curve without the lift dims, which 5-D has too)
def test_arc_value_rises_along_the_curve_where_the_data_thin_out_and_falls_off_it(name):
    t, g, spec = task(name), geometry(name), synthetic_spec(name)
    states = some_states(name, 32)
    u = jnp.linspace(0.0, 1.0, 21)
    on_curve = jax.jit(jax.vmap(lambda ui: g.curve(states, jnp.full(len(states), ui)), out_axes=1))(u)  # (32, 21, d)
    flat = lambda x: x.reshape(-1, spec.action_dim)
    value = t.true_value(jnp.repeat(states, len(u), axis=0), flat(on_curve)).reshape(len(states), len(u))
    log_p = t.behavior_log_density(jnp.repeat(states, len(u), axis=0), flat(on_curve)).reshape(len(states), len(u))
    line = spec.bottom_value + (spec.top_value - spec.bottom_value) * u
    np.testing.assert_allclose(value, np.broadcast_to(line, value.shape), rtol=1e-4)
    assert np.all(np.diff(log_p[:, 2:], axis=1) < 0)  # density falls along the curve (past the start's rounding)
    assert np.all(np.argmin(log_p, axis=1) == len(u) - 1) and np.all(np.argmax(value, axis=1) == len(u) - 1)
    # Off the curve (radially outward at its best end) and past its end, the value falls.
    end, tangent_point = jax.jit(g.best_action)(states), jax.jit(g.curve)(states, jnp.full(len(states), 1.1))
    outward = [t.true_value(states, end * (1 + r / spec.radius)) for r in (0.0, 0.05, 0.1, 0.2)]
    assert all(np.all(a > b) for a, b in zip(outward, outward[1:]))
    assert np.all(t.true_value(states, tangent_point) < 0.9 * spec.top_value)
    # The data: sparser and more valuable towards the best end.
    data = t.dataset
    _, alpha, _ = jax.jit(g.base_coordinates)(data["observations"], data["actions"])
    position = np.asarray(alpha) / spec.arc_span
    first, last = position < 0.2, position > 0.8
    assert last.sum() < 0.4 * first.sum() and data["rewards"][last].mean() > data["rewards"][first].mean() + 0.3
    # ... distributed along the curve as the density says: Kolmogorov-Smirnov distance between the data's
    # arc angles and the density's marginal along the arc (0.008 here; a decay 10% off gives 0.03).
    grid = np.linspace(-0.5, spec.arc_span + 0.5, 4001)
    cdf = np.cumsum(np.exp(np.asarray(g.log_density_along(jnp.asarray(grid))))) * (grid[1] - grid[0])
    empirical = np.searchsorted(np.sort(np.asarray(alpha)), grid, side="right") / len(position)
    assert cdf[-1] == pytest.approx(1.0, abs=1e-3) and np.abs(cdf - empirical).max() < 0.015


@pytest.mark.parametrize("name", ["cliff-5d"])  # (cliff-2d: the same code, one rotation plane)
def test_cliff_value_rises_to_the_edge_and_drops_beyond_where_there_are_no_data(name):
    t, g, spec = task(name), geometry(name), synthetic_spec(name)
    states = some_states(name, 32)
    back = spec.edge - spec.depth
    direction = g.direction(states)
    along = lambda z: t.true_value(states, z * direction)
    inside = np.stack([along(z) for z in np.linspace(back, spec.edge, 15)], axis=1)
    assert np.all(np.diff(inside, axis=1) > 0)  # rises across the support
    np.testing.assert_allclose(along(spec.edge), spec.top_value, rtol=1e-5)  # the best supported action
    beyond = np.stack([along(spec.edge + dz) for dz in (0.02, 0.05, 0.1, 0.3)], axis=1)
    assert np.all(np.diff(beyond, axis=1) < 0) and np.all(beyond[:, 2:] < 0.01 * spec.top_value)  # the cliff
    assert np.all(np.isneginf(t.behavior_log_density(states, (spec.edge + 0.01) * direction)))
    # The data: none beyond the edge, and they reach it.
    data = t.dataset
    z, _ = jax.jit(g.coordinates)(data["observations"], data["actions"])
    z = np.asarray(z)
    assert z.max() <= spec.edge + 1e-6 and z.min() >= back - 1e-6 and np.mean(z > spec.edge - 0.05) > 0.05
    # A line fitted to the data's rewards along z rises at the edge: what a critic extrapolates past it.
    slope = np.polyfit(z, data["rewards"], 1)[0]
    assert slope > 0.5


# ------------------------------------------------------------------------------------------------
# End to end


# A tiny arc-2d run, the same as tests/test_truth_diagnostics.py's (its programs compiled once between them); without
# the learned density, which neither checks (its fit would be the run's longest part).
ARC_RUN = ("--task", "arc-2d", "--steps", "50", "--hidden", "8", "--batch-size", "64", "--k", "4", "--seeds", "0,1",
           "--log-interval", "25", "--eval-interval", "25", "--checkpoint-interval", "50", "--eval-episodes", "1",
           "--probes", "16", "--density", "off", "--no-progress")


def test_run_on_the_arc_task_end_to_end(tmp_path):
    result = invoke("run", *ARC_RUN, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    folder = tmp_path / "arc-2d" / "dynamic-k4"
    recorded = json.loads((folder / "config.json").read_text())["task"]
    assert recorded["name"] == "arc-2d"
    levels = dict(task("arc-2d").reference_levels)  # recorded for the report (which imports no task code)
    assert dict(recorded["reference_levels"]) == pytest.approx(levels) and recorded["behaviour_level"] == \
        "random behaviour action"
    assert [name for name, _ in recorded["reference_levels"]] == list(levels)  # in the task's order
    assert "seed 0: score" in result.output  # and the summary prints them beside the scores, for scale
    assert "reference levels: " + ", ".join(f"{name} {level:.3f}" for name, level in levels.items()) in result.output


def test_factory_tasks_pass_their_ground_truth_through():
    from drol_diag.tasks.base import Task
    from drol_diag.tasks.custom import task_from_factory_result

    rows = 4
    dataset = dict(observations=np.zeros((rows, 2)), actions=np.zeros((rows, 1)), rewards=np.zeros(rows),
                   masks=np.ones(rows), next_observations=np.zeros((rows, 2)))
    value = lambda observations, actions: -jnp.sum(jnp.square(actions), axis=-1)
    log_density = lambda observations, actions: jnp.zeros(len(actions))
    centres = lambda observations: jnp.zeros((len(observations), 1, 1))
    best = lambda observations: jnp.zeros(len(observations))
    from_dict = task_from_factory_result(dict(dataset=dataset, true_value=value, behavior_log_density=log_density,
                                              mode_centers=centres, best_value=best), "m:f")
    assert (from_dict.true_value, from_dict.behavior_log_density, from_dict.mode_centers,
            from_dict.best_value) == (value, log_density, centres, best)
    from_task = task_from_factory_result(Task("x", dataset, true_value=value), "m:g")
    assert from_task.true_value is value and from_task.behavior_log_density is None
    assert task_from_factory_result(dataset, "m:h").true_value is None  # a task without truth
    with pytest.raises(ValueError, match="true_value is a float, not a function"):
        task_from_factory_result(dict(dataset=dataset, true_value=1.0), "m:f")
