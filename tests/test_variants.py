"""The ablation variants end to end: every variant trained briefly on modes-2d with its diagnostics, and
the defining properties those runs show (static routing never reassigns, its owner table, random
routing's owners, every registered quantity logged). The properties checked on the learner's functions alone: test_variant_maths.py."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from scipy import stats

from diagnostics.quantities import DERIVED, QUANTITIES, ROW
from drol.learner import Learner, assign, make_init, static_owners
from drol.prior import sample_ball
from drol.variants import VARIANTS
from drol_diag.runfolder import store
from drol_diag.settings import resolve
from drol_diag.tasks import load_task
from tests.helpers import TINY_LEARNER, random_dataset
from training.driver import train

ALL_VARIANTS = [name for name in VARIANTS if name != "refresh-N"] + ["refresh-50"]
TINY_RUN = dict(actor_hidden=(8,), critic_hidden=(8,), seeds=(0, 1), steps=200, log_interval=100,
                eval_interval=100, checkpoint_interval=200)


@pytest.fixture(scope="module")
def variant_runs(tmp_path_factory):
    """Every variant trained briefly on modes-2d (2 seeds, diagnostics on): {name: (logs, run_dir)}."""
    out = tmp_path_factory.mktemp("variants")
    task = load_task("modes-2d")
    runs = {}
    for name in ALL_VARIANTS:
        k = None if name == "fql" else 4
        learner_config, run_config = resolve("modes-2d", "auto", ablation=name, num_candidates=k, probes=64,
                                             **TINY_RUN)
        summary = train(task, learner_config, run_config, out, progress=False)
        runs[name] = (xr.open_zarr(f"{summary.run_dir}/{store.LOG_STORE}", consolidated=False).load(), summary)
    return runs


@pytest.mark.parametrize("name", ALL_VARIANTS)
def test_every_variant_trains_and_logs_its_diagnostics(variant_runs, name):
    logs, summary = variant_runs[name]
    assert summary.steps == TINY_RUN["steps"] and np.all(np.isfinite(summary.scores))
    assert logs.attrs["ablation"] == name
    assert np.all(np.isfinite(logs.critic_loss.values)) and np.all(np.isfinite(logs.actor_loss.values))
    # Support and gradient quantities apply to every method; routing ones only where there are candidates.
    for variable in ("support_dist", "ood_frac", "grad_cos", "conflict_frac", "q_deployed"):
        assert np.all(np.isfinite(logs[variable].values)), variable
    routing = ("winner", "flip_rate", "winner_data_dist", "load", "owner_mismatch")
    if name == "fql":
        assert not any(v in logs for v in routing) and logs.attrs["num_candidates"] == 1
    else:
        assert all(v in logs for v in routing) and logs.sizes["candidate"] == 4


def test_static_routing_never_reassigns_and_dynamic_does(variant_runs):
    static, _ = variant_runs["static-routing"]
    dynamic, _ = variant_runs["dynamic"]
    assert np.all(static.flip_rate.values[:, 1:] == 0)  # (the first row has no previous one: NaN)
    assert np.all(static.winner.values == static.winner.values[:, :1])
    assert np.nanmax(dynamic.flip_rate.values) > 0
    # The frozen owner is overtaken by another candidate as the actor moves away from its initialisation.
    assert static.owner_mismatch.values[:, -1].max() > 0


def test_static_owner_table_is_the_nearest_under_the_initial_parameters(variant_runs):
    _, summary = variant_runs["static-routing"]
    learner_config, _ = resolve("modes-2d", "auto", ablation="static-routing", num_candidates=4, **TINY_RUN)
    task = load_task("modes-2d")
    n = len(task.dataset["actions"])
    learner = Learner(learner_config, task.obs_dim, task.action_dim, n)
    initial = make_init(learner)(jnp.asarray([0, 1]))
    saved, _ = store.load_checkpoint(Path(summary.run_dir), initial)
    actions = jnp.clip(jnp.asarray(task.dataset["actions"]), -1 + 1e-5, 1 - 1e-5)
    for s in range(2):
        expected = static_owners(learner, jax.tree.map(lambda x, s=s: x[s], initial.actor_params), initial.bank_key[s],
                                 jnp.arange(n), jnp.asarray(task.dataset["observations"]), actions)
        np.testing.assert_array_equal(np.asarray(saved.owners)[s], np.asarray(expected))


def test_random_routing_owners_are_uniform_and_ignore_distance(variant_runs):
    config = dataclasses.replace(TINY_LEARNER, routing="random")
    learner = Learner(config, obs_dim=3, action_dim=2)
    state = jax.tree.map(lambda x: x[0], make_init(learner)(jnp.asarray([0])))
    data = random_dataset(n=20000)
    latents = sample_ball(jax.random.PRNGKey(3), (20000, config.num_candidates), 2)
    routed = assign(learner, state, jnp.arange(20000), data["observations"], data["actions"], latents,
                    jax.random.PRNGKey(4))
    counts = np.bincount(np.asarray(routed.winners), minlength=config.num_candidates)
    assert stats.chisquare(counts).pvalue > 1e-3
    nearest_share = np.mean(np.asarray(routed.winners == routed_nearest(learner, state, data, latents)))
    assert abs(nearest_share - 1 / config.num_candidates) < 0.02
    logs, _ = variant_runs["random-routing"]  # on the probes too: about 1/K of the owners are the nearest
    assert abs(1 - float(logs.owner_mismatch.mean()) - 1 / 4) < 0.1


def routed_nearest(learner, state, data, latents):
    nearest = dataclasses.replace(learner.config, routing="nearest")
    return assign(dataclasses.replace(learner, config=nearest), state, None, data["observations"], data["actions"], latents,
                  None).winners


@pytest.mark.parametrize("name", ["dynamic", "fql"])
def test_every_registered_quantity_is_logged_with_its_dims_and_every_logged_one_is_registered(variant_runs, name):
    logs, _ = variant_runs[name]
    method = "fql" if name == "fql" else "drol"
    for quantity in QUANTITIES.values():
        if quantity.kind == DERIVED:
            continue
        if method not in quantity.methods:
            assert quantity.name not in logs, f"{quantity.name} is logged by {method}, not registered for it"
            continue
        expected = ("seed", "step", *quantity.dims) if quantity.kind == ROW else quantity.dims
        assert logs[quantity.name].dims == expected, quantity.name
    # Everything else in the log is a training metric (seed, step), an evaluation (seed, eval_step) or the probes.
    unregistered = {name for name, var in logs.data_vars.items() if name not in QUANTITIES and name != "probe_index"
                    and var.dims not in (("seed", "step"), ("seed", "eval_step"))}
    assert not unregistered, f"logged but not in diagnostics.quantities: {unregistered}"
