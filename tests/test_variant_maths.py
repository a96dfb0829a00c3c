"""The ablation variants' defining properties, checked on the learner's functions without a training
run: soft routing between its two limits, all candidates, refresh-N's snapshot and its two extremes,
FQL's one-step actor. Every variant trained end to end: test_variants.py."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from drol.config import FQLConfig
from drol.fql import FQLLearner, flow_actions
from drol.learner import Learner, assign, make_init, make_train_chunk, static_owners
from drol.losses import actor_loss
from drol.prior import sample_ball
from drol_diag.settings import resolve
from drol_diag.tasks import load_task
from tests.helpers import TINY_LEARNER, random_dataset


def actor_grads(learner, state, data, routed):
    loss = lambda p: actor_loss(p, state.critic_params, data["observations"], data["actions"], routed.latents,
                                routed.weights, actor=learner.actor, critic=learner.critic, config=learner.config)[0]
    return jax.tree.leaves(jax.jit(jax.grad(loss))(state.actor_params))


def routed_with(routing, temperature, data, latents):
    learner = Learner(dataclasses.replace(TINY_LEARNER, routing=routing, routing_temperature=temperature), 3, 2)
    state = jax.tree.map(lambda x: x[0], make_init(learner)(jnp.asarray([0])))
    return learner, state, assign(learner, state, None, data["observations"], data["actions"], latents, None)


def test_soft_routing_tends_to_dynamic_as_temperature_goes_to_zero():
    data = {k: v[:128] for k, v in random_dataset().items()}
    latents = sample_ball(jax.random.PRNGKey(5), (128, TINY_LEARNER.num_candidates), 2)
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
    latents = sample_ball(jax.random.PRNGKey(6), (128, TINY_LEARNER.num_candidates), 2)
    learner, state, uniform = routed_with("uniform", 1.0, data, latents)
    _, _, soft = routed_with("soft", float("inf"), data, latents)
    np.testing.assert_array_equal(np.asarray(uniform.weights), np.asarray(soft.weights))
    for a, b in zip(actor_grads(learner, state, data, uniform), actor_grads(learner, state, data, soft)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_refresh_snapshot_is_the_actor_of_the_last_multiple_of_n():
    config = dataclasses.replace(TINY_LEARNER, latents="bank", refresh_interval=10)
    learner = Learner(config, 3, 2)
    data, chunk = random_dataset(), make_train_chunk(learner)
    states = make_init(learner)(jnp.asarray([0]))
    for _ in range(4):
        states, _ = chunk(states, data, 5)
    actor_after_20 = [np.asarray(leaf) for leaf in jax.tree.leaves(states.actor_params)]
    states, _ = chunk(states, data, 5)
    for snapshot, actor in zip(jax.tree.leaves(states.routing_params), actor_after_20):
        np.testing.assert_array_equal(np.asarray(snapshot), actor)
    assert not np.array_equal(np.asarray(jax.tree.leaves(states.actor_params)[0]), actor_after_20[0])


def test_refresh_never_due_equals_static_routing_and_refresh_1_is_dynamic_bank():
    assert resolve("modes-2d", ablation="refresh-1")[0] == resolve("modes-2d", ablation="dynamic-bank")[0]
    data = random_dataset()
    n = data["actions"].shape[0]
    static = Learner(dataclasses.replace(TINY_LEARNER, latents="bank", refresh_interval=0), 3, 2, n)
    periodic = Learner(dataclasses.replace(TINY_LEARNER, latents="bank", refresh_interval=10**6), 3, 2, n)
    init = make_init(static)(jnp.asarray([0]))
    # (jitted: one program instead of op-by-op dispatch, which compiles every primitive on its own)
    owners = jax.jit(jax.vmap(lambda p, k: static_owners(static, p, k, jnp.arange(n), data["observations"],
                                                         data["actions"])))(init.actor_params, init.bank_key)
    static_after, _ = make_train_chunk(static)(init._replace(owners=owners), data, 15)
    periodic_after, _ = make_train_chunk(periodic)(make_init(periodic)(jnp.asarray([0])), data, 15)
    for a, b in zip(jax.tree.leaves(static_after.actor_params), jax.tree.leaves(periodic_after.actor_params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_fql_one_step_actor_learns_the_flow_policy_when_the_critic_term_is_off():
    task = load_task("modes-2d")
    data = {k: jnp.asarray(v, jnp.float32) for k, v in task.dataset.items() if k in
            ("observations", "actions", "rewards", "masks", "next_observations")}
    # 300 updates, batch 128: the gap below ends about 20x under its bar, the distillation loss at 1/200 of its
    # first chunk's, the teacher 8x nearer the data than its bar (800 updates: 40x; 2,000 at batch 256: 100x).
    config = FQLConfig(actor_hidden=(64, 64), critic_hidden=(32, 32), alpha=1.0, q_coef=0.0, batch_size=128)
    learner = FQLLearner(config, task.obs_dim, task.action_dim)
    states = make_init(learner)(jnp.asarray([0]))
    chunk = make_train_chunk(learner)
    distill = []
    for _ in range(3):
        states, metrics = chunk(states, data, 100)
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
