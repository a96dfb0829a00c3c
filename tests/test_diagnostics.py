"""Probe diagnostics: shapes and ranges, flips, returns, distances, conflicts, probe sets."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diagnostics.probes import ProbeSet, draw_probe_set, probe_diagnostics
from diagnostics.stability import OwnershipTracker, adjusted_rand_index
from drol.config import DROLConfig
from drol.learner import Learner, bank_key, init_state
from drol.losses import candidate_actions
from drol.prior import latent_bank
from drol_diag.runfolder import store
from drol_diag.settings import resolve
from drol_diag.tasks import load_task
from training.driver import device_dataset, train

# (no learned density: none of the quantities here reads it, and its fit would be the module's longest part)
TINY = dict(actor_hidden=(16, 16), critic_hidden=(16, 16), batch_size=32, num_candidates=4, seeds=(0, 1),
            steps=300, log_interval=100, eval_interval=300, checkpoint_interval=300, density="off")


def run_logs(out: Path, **overrides):
    learner, run = resolve("modes-2d", "auto", **{"probes": 128, **TINY, **overrides})
    summary = train(load_task("modes-2d"), learner, run, out, progress=False)
    return store.read_store(Path(summary.run_dir))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return run_logs(tmp_path_factory.mktemp("trained"))


def test_quantities_have_the_documented_shapes_and_ranges(trained):
    logs = trained
    seeds, steps, k = 2, 3, 4
    assert logs.sizes["probe"] == 128 and logs.sizes["candidate"] == k and logs.sizes["layer"] == 3
    for name in ("flip_rate", "nearest_flip_rate", "return_rate", "winner_ari", "owner_mismatch", "grad_cos",
                 "grad_norm_ratio", "conflict_frac", "load_entropy", "dead_candidates", "candidate_spread",
                 "q_winner", "q_data", "q_deployed", "winner_data_dist_mean", "support_dist_mean", "ood_frac"):
        assert logs[name].dims == ("seed", "step") and logs[name].shape == (seeds, steps), name
    for name in ("winner", "nearest", "winner_data_dist", "flips_total", "support_dist", "action_cos"):
        assert logs[name].dims == ("seed", "step", "probe"), name
    # the training batch's Q beside the probes' (the probes' q_data and q_winner once overwrote the batch's)
    assert logs["batch_q"].shape == logs["batch_q_winner"].shape == (seeds, steps)
    assert not np.allclose(logs["batch_q"].values, logs["q_data"].values)
    assert logs["load"].dims == ("seed", "step", "candidate")
    assert logs["grad_cos_layer"].dims == ("seed", "step", "layer")
    winner = logs["winner"].values
    assert winner.min() >= 0 and winner.max() < k
    rates = logs[["flip_rate", "nearest_flip_rate", "return_rate", "ood_frac", "conflict_frac"]].isel(step=slice(1, None))
    for name, var in rates.data_vars.items():
        assert np.all((var.values >= 0) & (var.values <= 1)), name
    assert np.all(np.isnan(logs["flip_rate"].isel(step=0).values))  # no previous interval yet
    assert np.all(logs["return_rate"].values[:, 1:] <= logs["flip_rate"].values[:, 1:])
    assert np.all(logs["owner_mismatch"].values == 0)  # dynamic routing: the owner is the nearest
    np.testing.assert_allclose(logs["load"].sum("candidate").values, 1.0, rtol=1e-6)
    assert np.all((logs["load_entropy"].values >= 0) & (logs["load_entropy"].values <= 1 + 1e-6))
    np.testing.assert_array_equal(logs["dead_candidates"].values, (logs["load"].values == 0).sum(-1))
    assert np.all(np.abs(logs["grad_cos"].values) <= 1 + 1e-5)
    assert np.all(np.abs(logs["grad_cos_layer"].values) <= 1 + 1e-5)
    quantiles = logs["winner_data_dist_quantiles"].values
    assert np.all(np.diff(quantiles, axis=-1) >= 0) and np.all(quantiles >= 0)
    assert np.all(logs["support_dist"].values >= 0) and logs["support_dist_ref"].values.min() >= 0
    # Cumulative flips add up the flip rate.
    np.testing.assert_allclose(logs["flips_total"].values[:, -1].mean(-1),
                               np.nansum(logs["flip_rate"].values, axis=1), rtol=1e-9)


def test_flip_rate_is_zero_when_parameters_do_not_change_and_positive_in_training(tmp_path, trained):
    frozen = run_logs(tmp_path, lr=0.0)
    assert np.all(frozen["flip_rate"].values[:, 1:] == 0)
    assert np.all(frozen["nearest_flip_rate"].values[:, 1:] == 0)
    assert np.all(frozen["winner_ari"].values[:, 1:] == 1.0)
    assert np.all(trained["flip_rate"].values[:, 1:] > 0)


def test_return_rate_counts_a_constructed_a_b_a_sequence():
    tracker = OwnershipTracker(num_seeds=1, num_probes=4, num_candidates=3)
    sequence = [[0, 1, 2, 2], [1, 1, 0, 2], [0, 1, 2, 1], [1, 1, 2, 1]]
    results = [tracker.update(np.asarray([w]), np.asarray([w])) for w in sequence]
    # Step 1: probes 0 and 2 flip to candidates they never owned: flips but no returns.
    assert results[1]["flip_rate"][0] == 0.5 and results[1]["return_rate"][0] == 0.0
    # Step 2: probe 0 goes back to 0 (A->B->A), probe 2 back to 2, probe 3 to a new 1.
    assert results[2]["flip_rate"][0] == 0.75 and results[2]["return_rate"][0] == 0.5
    # Step 3: probe 0 returns to 1 again.
    assert results[3]["return_rate"][0] == 0.25
    np.testing.assert_array_equal(results[3]["flips_total"][0], [3, 0, 2, 1])


def test_adjusted_rand_index():
    a = np.array([0, 0, 1, 1, 2, 2])
    assert adjusted_rand_index(a, a) == 1.0
    assert adjusted_rand_index(a, np.array([5, 5, 7, 7, 9, 9])) == 1.0  # label-free
    assert adjusted_rand_index(a, np.array([0, 1, 0, 1, 0, 1])) < 0.1


def constructed_probes(learner, state, seed=0, m=64):
    """Probes whose data actions sit on candidate 0 of their bank."""
    rng = np.random.default_rng(seed)
    obs = jnp.asarray(rng.uniform(-1, 1, (m, learner.obs_dim)), jnp.float32)
    latents = latent_bank(bank_key(seed), jnp.arange(m), learner.config.num_candidates, learner.action_dim)
    # (jitted: op by op, each operation would compile a program of its own)
    candidates = jax.jit(lambda params: candidate_actions(learner.actor, params, obs, latents))(state.actor_params)
    return obs, latents, candidates


def test_winner_data_dist_is_zero_on_a_candidate_and_conflict_follows_the_critic():
    config = DROLConfig(actor_hidden=(32, 32), critic_hidden=(32, 32), num_candidates=4)
    learner = Learner(config, obs_dim=2, action_dim=2)
    state = jax.jit(init_state, static_argnums=0)(learner, 0)
    obs, latents, candidates = constructed_probes(learner, state)
    key = jax.random.PRNGKey(0)

    diagnose = jax.jit(probe_diagnostics, static_argnums=0)
    exact = diagnose(learner, state, ProbeSet(jnp.arange(64), obs, candidates[:, 0], latents), key)
    assert np.all(np.asarray(exact["winner"]) == 0)
    assert float(jnp.max(exact["winner_data_dist"])) == 0.0

    # The critic's ascent direction at candidate 0; data a little way along it or against it.
    @jax.jit
    def unit_ascent_and_step(critic_params):
        q_min = lambda a: jnp.min(learner.critic.apply(critic_params, obs, a), axis=0)
        ascent = jax.grad(lambda a: jnp.sum(q_min(a)))(candidates[:, 0])
        gaps = jnp.linalg.norm(candidates[:, 1:] - candidates[:, :1], axis=-1).min(-1)
        return ascent / jnp.linalg.norm(ascent, axis=-1, keepdims=True), 0.25 * gaps[:, None]  # stays nearest to 0

    unit, step = unit_ascent_and_step(state.critic_params)
    towards = diagnose(learner, state, ProbeSet(jnp.arange(64), obs, candidates[:, 0] + step * unit, latents), key)
    away = diagnose(learner, state, ProbeSet(jnp.arange(64), obs, candidates[:, 0] - step * unit, latents), key)
    assert np.all(np.asarray(towards["winner"]) == 0) and np.all(np.asarray(away["winner"]) == 0)
    assert float(towards["conflict_frac"]) == 0.0
    assert float(away["conflict_frac"]) == 1.0


def test_probe_set_depends_on_task_and_seed_only():
    task = load_task("modes-2d")
    data = device_dataset(task.dataset)
    small, large = draw_probe_set(data, 3, 100, 4), draw_probe_set(data, 3, 100, 16)
    np.testing.assert_array_equal(np.asarray(small.indices), np.asarray(large.indices))
    np.testing.assert_array_equal(np.asarray(small.latents), np.asarray(large.latents)[:, :4])  # prefix banks
    other = draw_probe_set(data, 4, 100, 4)
    assert not np.array_equal(np.asarray(other.indices), np.asarray(small.indices))
    assert len(set(np.asarray(small.indices).tolist())) == 100  # without replacement


def test_support_distances_are_exact_nearest_neighbours():
    from scipy.spatial import cKDTree

    from diagnostics.support import SupportIndex, chunk_rows

    rng = np.random.default_rng(0)
    n = 3 * chunk_rows() + 77  # more than one chunk, the last one padded
    data = dict(observations=rng.normal(size=(n, 6)).astype(np.float32), actions=rng.uniform(-1, 1, (n, 2)).astype(np.float32))
    held_out = dict(observations=rng.normal(size=(300, 6)).astype(np.float32), actions=rng.uniform(-1, 1, (300, 2)).astype(np.float32))
    index = SupportIndex(data, held_out, num_reference=300)
    tree = cKDTree((np.concatenate([data["observations"], data["actions"]], 1) - index.mean) / index.scale)
    queries = (np.concatenate([held_out["observations"], held_out["actions"]], 1) - index.mean) / index.scale
    expected, _ = tree.query(queries)
    np.testing.assert_allclose(index.distances(held_out["observations"], held_out["actions"]), expected, atol=1e-5)
    np.testing.assert_allclose(np.sort(index.reference), np.sort(expected), atol=1e-5)
    assert index.ood_threshold == pytest.approx(np.percentile(expected, 95), abs=1e-5)
    # A training pair is at distance 0 from itself, unless excluded.
    rows = np.arange(5)
    assert np.all(index.distances(data["observations"][rows], data["actions"][rows]) < 1e-3)
    second, _ = tree.query(tree.data[rows], k=2)
    np.testing.assert_allclose(index.distances(data["observations"][rows], data["actions"][rows], exclude=rows),
                               second[:, 1], atol=1e-5)
