"""The ablation variants: each one's defining property, and every variant end to end on modes-2d."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from scipy import stats
from test_learner import TINY, random_dataset

from drol.config import FQLConfig

from drol_diag.settings import resolve
from drol_diag.tasks import load_task
from drol.fql import FQLLearner, flow_actions
from drol.learner import Learner, assign, make_init, make_train_chunk, static_owners
from drol.losses import actor_loss
from drol.prior import sample_ball
from drol.variants import VARIANTS
from drol_diag.runfolder import store
from drol_diag.training.driver import train

ALL_VARIANTS = [name for name in VARIANTS if name != "refresh-N"] + ["refresh-50"]
TINY_RUN = dict(actor_hidden=(16, 16), critic_hidden=(16, 16), seeds=(0, 1), steps=300, log_interval=100,
                eval_interval=100, checkpoint_interval=300)


@pytest.fixture(scope="module")
def variant_runs(tmp_path_factory):
    """Every variant trained briefly on modes-2d (2 seeds, diagnostics on): {name: (logs, run_dir)}."""
    out = tmp_path_factory.mktemp("variants")
    task = load_task("modes-2d")
    runs = {}
    for name in ALL_VARIANTS:
        k = None if name == "fql" else 4
        learner_config, run_config = resolve("modes-2d", "auto", ablation=name, num_candidates=k, **TINY_RUN)
        summary = train(task, learner_config, run_config, out, progress=False, num_probes=64)
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
    assert np.all((static.winner.values == static.winner.values[:, :1]))
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
        expected = static_owners(learner, jax.tree.map(lambda x: x[s], initial.actor_params), initial.bank_key[s],
                                 jnp.arange(n), jnp.asarray(task.dataset["observations"]), actions)
        np.testing.assert_array_equal(np.asarray(saved.owners)[s], np.asarray(expected))


def test_random_routing_owners_are_uniform_and_ignore_distance(variant_runs):
    config = dataclasses.replace(TINY, routing="random")
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


def actor_grads(learner, state, data, routed):
    loss = lambda p: actor_loss(p, state.critic_params, data["observations"], data["actions"], routed.latents,
                                routed.weights, actor=learner.actor, critic=learner.critic, config=learner.config)[0]
    return jax.tree.leaves(jax.jit(jax.grad(loss))(state.actor_params))


def routed_with(routing, temperature, data, latents):
    learner = Learner(dataclasses.replace(TINY, routing=routing, routing_temperature=temperature), 3, 2)
    state = jax.tree.map(lambda x: x[0], make_init(learner)(jnp.asarray([0])))
    return learner, state, assign(learner, state, None, data["observations"], data["actions"], latents, None)


def test_soft_routing_tends_to_dynamic_as_temperature_goes_to_zero():
    data = {k: v[:128] for k, v in random_dataset().items()}
    latents = sample_ball(jax.random.PRNGKey(5), (128, TINY.num_candidates), 2)
    learner, state, hard = routed_with("nearest", 1.0, data, latents)
    winner_grads = actor_grads(learner, state, data, hard)
    for temperature, close in ((1e-6, True), (1.0, False)):
        learner, state, soft = routed_with("soft", temperature, data, latents)
        assert np.array_equal(np.asarray(soft.winners), np.asarray(hard.winners))
        soft_grads = actor_grads(learner, state, data, soft)
        same = all(np.allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
                   for a, b in zip(soft_grads, winner_grads))
        assert same == close, temperature


def test_all_candidates_equals_soft_routing_at_infinite_temperature():
    data = {k: v[:128] for k, v in random_dataset().items()}
    latents = sample_ball(jax.random.PRNGKey(6), (128, TINY.num_candidates), 2)
    learner, state, uniform = routed_with("uniform", 1.0, data, latents)
    _, _, soft = routed_with("soft", float("inf"), data, latents)
    np.testing.assert_array_equal(np.asarray(uniform.weights), np.asarray(soft.weights))
    for a, b in zip(actor_grads(learner, state, data, uniform), actor_grads(learner, state, data, soft)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_refresh_snapshot_is_the_actor_of_the_last_multiple_of_n():
    config = dataclasses.replace(TINY, latents="bank", refresh_interval=10)
    learner = Learner(config, 3, 2)
    data, chunk = random_dataset(), make_train_chunk(learner, 5)
    states = make_init(learner)(jnp.asarray([0]))
    for _ in range(4):
        states, _ = chunk(states, data)
    actor_after_20 = [np.asarray(leaf) for leaf in jax.tree.leaves(states.actor_params)]
    states, _ = chunk(states, data)
    for snapshot, actor in zip(jax.tree.leaves(states.routing_params), actor_after_20):
        np.testing.assert_array_equal(np.asarray(snapshot), actor)
    assert not np.array_equal(np.asarray(jax.tree.leaves(states.actor_params)[0]), actor_after_20[0])


def test_refresh_never_due_equals_static_routing_and_refresh_1_is_dynamic_bank():
    assert resolve("modes-2d", ablation="refresh-1")[0] == resolve("modes-2d", ablation="dynamic-bank")[0]
    data = random_dataset()
    n = data["actions"].shape[0]
    static = Learner(dataclasses.replace(TINY, latents="bank", refresh_interval=0), 3, 2, n)
    periodic = Learner(dataclasses.replace(TINY, latents="bank", refresh_interval=10**6), 3, 2, n)
    init = make_init(static)(jnp.asarray([0]))
    owners = jax.vmap(lambda p, k: static_owners(static, p, k, jnp.arange(n), data["observations"], data["actions"]))(
        init.actor_params, init.bank_key)
    static_after, _ = make_train_chunk(static, 15)(init._replace(owners=owners), data)
    periodic_after, _ = make_train_chunk(periodic, 15)(make_init(periodic)(jnp.asarray([0])), data)
    for a, b in zip(jax.tree.leaves(static_after.actor_params), jax.tree.leaves(periodic_after.actor_params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_fql_one_step_actor_learns_the_flow_policy_when_the_critic_term_is_off():
    task = load_task("modes-2d")
    data = {k: jnp.asarray(v, jnp.float32) for k, v in task.dataset.items() if k in
            ("observations", "actions", "rewards", "masks", "next_observations")}
    config = FQLConfig(actor_hidden=(64, 64), critic_hidden=(32, 32), alpha=1.0, q_coef=0.0)
    learner = FQLLearner(config, task.obs_dim, task.action_dim)
    states = make_init(learner)(jnp.asarray([0]))
    chunk = make_train_chunk(learner, 500)
    distill = []
    for _ in range(4):
        states, metrics = chunk(states, data)
        distill.append(float(metrics["distill_loss"][0]))
    state = jax.tree.map(lambda x: x[0], states)
    obs = data["observations"][:2048]
    noises = jax.random.normal(jax.random.PRNGKey(9), (2048, task.action_dim))
    one_step = jnp.clip(learner.actor.apply(state.actor_params, obs, noises), -1, 1)
    teacher = flow_actions(learner, state.flow_params, obs, noises)
    gap = float(jnp.mean(jnp.square(one_step - teacher)))
    # The teacher is multi-modal (its actions spread over the modes), and the student follows it noise by noise.
    assert gap < 0.1 * float(jnp.mean(jnp.var(teacher, axis=0)))
    assert distill[-1] < 0.5 * distill[0]
    # The teacher itself imitates the data: its actions lie near the data's modes.
    nearest_data = jnp.min(jnp.sum(jnp.square(teacher[:256, None] - data["actions"][None, :4096]), -1), axis=1)
    assert float(jnp.median(nearest_data)) < 0.05
