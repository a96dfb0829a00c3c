"""Probe diagnostics against a task's ground truth (issue 14): the true value and the behaviour log-density at the
winner, the data action and the deployed action, the critic's bias, the truly-out-of-support share and the
true-gradient conflict, and the regret split (the oracle's value, the best of the K candidates). Known answers on small
constructed arrays; a real run logs them all: tests/test_calibration.py, and the regret split on arc-2d here
(tests/test_truth_tasks.py's tiny arc run)."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from diagnostics.probes import LOG_DENSITY_FLOOR, truth_diagnostics
from diagnostics.quantities import DERIVED, DROL, QUANTITIES, derive
from drol_diag.runfolder import store
from tests.helpers import invoke
from tests.test_truth_tasks import ARC_RUN  # (tests/test_truth_tasks.py's end-to-end run: one configuration)

# The quantities that need a task's truth (all registered; none logged for a task without one).
TRUTH = ("true_value_winner", "true_value_data", "true_value_deployed", "critic_bias", "critic_bias_winner",
         "true_conflict_frac", "behavior_logp_winner", "behavior_logp_data", "behavior_logp_deployed",
         "behavior_logp", "true_ood_threshold", "true_ood_frac", "true_value_best_candidate", "true_value_oracle")
# DROL only: FQL has no winner and no candidates
WINNER_ONLY = {"true_value_winner", "critic_bias_winner", "true_conflict_frac", "behavior_logp_winner",
               "true_value_best_candidate"}

WEIGHTS = jnp.asarray([2.0, -1.0])  # a linear true value: v(s, a) = s_0 + a . w, gradient w in a


def linear_value(observations, actions):
    return observations[:, 0] + actions @ WEIGHTS


def box_best_value(observations):
    """linear_value's largest value over actions in [-1, 1]^2: at (1, -1)."""
    return observations[:, 0] + jnp.sum(jnp.abs(WEIGHTS))


def gaussian_with_edge(observations, actions):
    """Standard normal in the actions, no support (log 0) beyond a_0 = 1."""
    logp = -0.5 * jnp.sum(actions**2, -1) - actions.shape[-1] / 2 * math.log(2 * math.pi)
    return jnp.where(actions[:, 0] > 1.0, -jnp.inf, logp)


def test_truth_quantities_have_their_known_answers():
    rng = np.random.default_rng(0)
    obs = jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)
    winners = jnp.asarray(rng.uniform(-0.5, 0.5, (8, 2)), jnp.float32)
    # Data actions: 3 of 8 probes lie against the true ascent w from their winner, 5 along it.
    steps = np.asarray([-1, -1, -1, 1, 1, 1, 1, 1], np.float32)[:, None] * 0.1 * np.asarray(WEIGHTS)
    data = winners + jnp.asarray(steps)
    # Deployed: 2 beyond the edge (no support), 2 far out but supported, 4 at the origin.
    deployed = jnp.asarray([[1.5, 0], [2, 0], [0, -4], [0, 4], [0, 0], [0, 0], [0, 0], [0, 0]], jnp.float32)
    at_origin = -math.log(2 * math.pi)
    threshold = at_origin - 1.0  # radius sqrt(2): the two supported far actions (radius 4) are below it
    out = truth_diagnostics(obs, data, deployed, winners, jnp.asarray(3.0), jnp.asarray(-1.0), linear_value,
                            gaussian_with_edge, threshold)
    mean = lambda x: float(np.mean(x))
    assert float(out["true_value_data"]) == pytest.approx(mean(linear_value(obs, data)), abs=1e-5)
    assert float(out["true_value_winner"]) == pytest.approx(mean(linear_value(obs, winners)), abs=1e-5)
    true_deployed = mean(obs[:, 0]) + mean(deployed @ WEIGHTS)
    assert float(out["true_value_deployed"]) == pytest.approx(true_deployed, abs=1e-5)
    assert float(out["critic_bias"]) == pytest.approx(3.0 - true_deployed, abs=1e-5)
    assert float(out["critic_bias_winner"]) == pytest.approx(-1.0 - mean(linear_value(obs, winners)), abs=1e-5)
    assert float(out["true_conflict_frac"]) == pytest.approx(3 / 8)
    # The floor stands for the two actions beyond the edge; the others count their own log-density.
    far = at_origin - 8.0
    expected = (2 * LOG_DENSITY_FLOOR + 2 * far + 4 * at_origin) / 8
    assert float(out["behavior_logp_deployed"]) == pytest.approx(expected, abs=1e-4)
    per_probe = [LOG_DENSITY_FLOOR] * 2 + [far] * 2 + [at_origin] * 4  # behavior_logp: the same, probe by probe
    np.testing.assert_allclose(np.asarray(out["behavior_logp"]), per_probe, atol=1e-4)
    assert float(out["behavior_logp_data"]) == pytest.approx(mean(gaussian_with_edge(obs, data)), abs=1e-4)
    assert float(out["true_ood_frac"]) == pytest.approx(4 / 8)  # beyond the edge, and far out
    # FQL has no winner: only the data and deployed quantities; a task without truth: none.
    fql = truth_diagnostics(obs, data, deployed, None, jnp.asarray(3.0), None, linear_value, gaussian_with_edge,
                            threshold, best_value=box_best_value)
    assert set(fql) == set(TRUTH) - WINNER_ONLY - {"true_ood_threshold"}
    assert truth_diagnostics(obs, data, deployed, winners, jnp.asarray(3.0), jnp.asarray(-1.0)) == {}


def test_registry_methods_of_the_truth_quantities():
    for name in TRUTH:
        quantity = QUANTITIES[name]
        assert quantity.kind != DERIVED
        assert quantity.methods == ((DROL,) if name in WINNER_ONLY else ("drol", "fql")), name


def test_the_regret_split_adds_up_and_its_best_candidate_is_the_best_of_the_k():
    rng = np.random.default_rng(1)
    obs = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    candidates = jnp.asarray(rng.uniform(-1, 1, (6, 4, 2)), jnp.float32)  # (M, K, d), inside the oracle's box
    deployed = jnp.asarray(rng.uniform(-1, 1, (6, 2)), jnp.float32)
    out = truth_diagnostics(obs, deployed, deployed, candidates[:, 0], jnp.asarray(0.0), jnp.asarray(0.0),
                            linear_value, candidates=candidates, best_value=box_best_value)
    per_candidate = np.stack([np.asarray(linear_value(obs, candidates[:, k])) for k in range(4)], axis=1)  # (M, K)
    best = float(out["true_value_best_candidate"])
    assert best == pytest.approx(per_candidate.max(axis=1).mean(), abs=1e-5)
    assert np.all(best >= per_candidate.mean(axis=0) - 1e-6)  # at least every candidate's own mean over probes
    oracle = float(out["true_value_oracle"])
    assert oracle == pytest.approx(float(np.mean(box_best_value(obs))), abs=1e-5) and oracle >= best
    # The report's two terms (registry derivations) add up to the oracle's lead over the deployed action.
    logged = {name: np.asarray(out[name]).reshape(1, 1)  # (seeds, rows)
              for name in ("true_value_oracle", "true_value_best_candidate", "true_value_deployed")}
    no_candidate, sampling = derive("regret_no_candidate", logged), derive("regret_sampling", logged)
    assert float(no_candidate[0, 0]) == pytest.approx(oracle - best, abs=1e-6) and no_candidate[0, 0] >= 0
    assert float(no_candidate[0, 0] + sampling[0, 0]) == pytest.approx(
        oracle - float(out["true_value_deployed"]), abs=1e-5)
    # Without candidates (FQL) no best candidate; without best_value no oracle.
    assert "true_value_best_candidate" not in truth_diagnostics(obs, deployed, deployed, None, jnp.asarray(0.0),
                                                                None, linear_value, best_value=box_best_value)
    assert "true_value_oracle" not in truth_diagnostics(obs, deployed, deployed, None, jnp.asarray(0.0), None,
                                                        linear_value, candidates=candidates)


def test_a_short_arc_run_logs_the_regret_split(tmp_path):
    result = invoke("run", *ARC_RUN, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    (log_store,) = list(tmp_path.glob(f"*/*/{store.LOG_STORE}"))
    logs = xr.open_zarr(log_store.resolve(), consolidated=False).load()
    for name in ("true_value_best_candidate", "true_value_oracle", "q_best_candidate"):
        assert logs[name].dims == ("seed", "step") and np.isfinite(logs[name].values).all(), name
    best, oracle = logs.true_value_best_candidate.values, logs.true_value_oracle.values
    assert np.all(oracle >= best - 1e-6)  # arc's oracle value is the largest any action has
    # The winner is one of the K candidates: the best of them is at least as good, truly and for the critic.
    assert np.all(best >= logs.true_value_winner.values - 1e-6)
    assert np.all(logs.q_best_candidate.values >= logs.q_winner.values - 1e-5)
    assert "candidates" not in logs  # handed to the truth, never logged
