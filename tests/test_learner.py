"""The learner's maths: fast gradient == reference gradient, routing, prior, seeds, divergence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from drol.learner import Learner, assign, init_state, make_init, make_train_chunk, update
from drol.losses import actor_loss, candidate_actions
from drol.prior import ball_radius, sample_ball
from drol.routing import route_nearest
from tests.helpers import TINY_LEARNER, random_dataset


def reference_actor_loss(actor_params, critic_params, observations, actions, latents, learner):
    """The straightforward loss: evaluate the critic on all B*K candidates, then select the winner."""
    config = learner.config
    candidates = candidate_actions(learner.actor, actor_params, observations, latents)  # (B, K, d), with grad
    batch, k, d = candidates.shape
    flat_obs = jnp.repeat(observations, k, axis=0)
    q_all = learner.critic.apply(jax.lax.stop_gradient(critic_params), flat_obs, candidates.reshape(-1, d))
    q_min_all = jnp.min(q_all, axis=0).reshape(batch, k)
    dists = jnp.sum(jnp.square(jax.lax.stop_gradient(candidates) - actions[:, None]), -1)
    onehot = jax.nn.one_hot(jnp.argmin(dists, axis=-1), k)
    winners = jnp.sum(onehot[..., None] * candidates, axis=1)
    q_min = jnp.sum(onehot * q_min_all, axis=1)
    bc = jnp.mean(jnp.sum(jnp.square(winners - actions), -1)) / d
    q_loss = -jnp.mean(q_min) / jax.lax.stop_gradient(jnp.maximum(jnp.mean(jnp.abs(q_min)), 1e-6))
    return config.bc_coef * bc + config.q_coef * q_loss


@pytest.mark.parametrize("action_dim", [2, 5])
def test_fast_actor_gradient_equals_reference_over_all_candidates(action_dim):
    learner = Learner(TINY_LEARNER, obs_dim=3, action_dim=action_dim)
    state = jax.jit(init_state, static_argnums=0)(learner, 0)
    data = random_dataset(action_dim=action_dim)
    obs, actions = data["observations"][:64], data["actions"][:64]
    # Push some candidates beyond [-1, 1] so the clip's zero gradient is exercised too.
    actor_params = jax.tree.map(lambda p: 3.0 * p, state.actor_params)
    latents = sample_ball(jax.random.PRNGKey(1), (64, TINY_LEARNER.num_candidates), action_dim)

    routed = assign(learner, state._replace(actor_params=actor_params), jnp.arange(64), obs, actions, latents, None)
    assert routed.latents.shape == (64, 1, action_dim)  # the fast path: winners only
    fast = jax.jit(jax.grad(lambda p: actor_loss(p, state.critic_params, obs, actions, routed.latents, routed.weights,
                                         actor=learner.actor, critic=learner.critic, config=TINY_LEARNER)[0]))(actor_params)
    reference = jax.jit(jax.grad(reference_actor_loss), static_argnums=5)(
        actor_params, state.critic_params, obs, actions, latents, learner)

    clipped = np.mean(np.abs(np.asarray(candidate_actions(learner.actor, actor_params, obs, latents))) >= 1.0)
    assert 0.0 < clipped < 1.0  # the test covers clipped and unclipped candidates
    for f, r in zip(jax.tree.leaves(fast), jax.tree.leaves(reference)):
        np.testing.assert_allclose(np.asarray(f), np.asarray(r), rtol=1e-4, atol=1e-6)
    assert max(float(jnp.abs(f).max()) for f in jax.tree.leaves(fast)) > 0


def test_routing_picks_nearest_candidate():
    rng = np.random.default_rng(0)
    candidates = jnp.asarray(rng.uniform(-1, 1, (100, 7, 3)), jnp.float32)
    actions = jnp.asarray(rng.uniform(-1, 1, (100, 3)), jnp.float32)
    winners = np.asarray(route_nearest(candidates, actions))
    brute = [int(np.argmin([np.linalg.norm(c - a) for c in cs])) for cs, a in zip(np.asarray(candidates), np.asarray(actions))]
    assert winners.tolist() == brute
    # A data action placed on candidate 5 is owned by candidate 5.
    assert np.all(np.asarray(route_nearest(candidates, candidates[:, 5])) == 5)


@pytest.mark.parametrize("action_dim", [1, 2, 5])
def test_prior_fills_ball_uniformly(action_dim):
    z = np.asarray(sample_ball(jax.random.PRNGKey(0), (20000,), action_dim))
    radius = np.linalg.norm(z, axis=-1)
    assert radius.max() <= ball_radius(action_dim) + 1e-5
    # Uniform in the ball: (|z| / R)^d is U(0, 1); directions have mean zero.
    u = (radius / ball_radius(action_dim)) ** action_dim
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert np.all(np.abs(z.mean(0)) < 0.05 * ball_radius(action_dim))


def test_seed_result_independent_of_companions():
    learner = Learner(TINY_LEARNER, obs_dim=3, action_dim=2)
    data = random_dataset()
    chunk = make_train_chunk(learner)
    together, _ = chunk(make_init(learner)(jnp.arange(4)), data, 20)
    alone, _ = chunk(make_init(learner)(jnp.asarray([3])), data, 20)
    for t, a in zip(jax.tree.leaves(together), jax.tree.leaves(alone)):
        np.testing.assert_allclose(np.asarray(t)[3], np.asarray(a)[0], rtol=1e-5, atol=1e-6)
    # Different seeds do differ.
    first = jax.tree.leaves(together.actor_params)[0]
    assert not np.allclose(np.asarray(first)[0], np.asarray(first)[3])


def test_non_finite_loss_freezes_only_that_seed():
    learner = Learner(TINY_LEARNER, obs_dim=3, action_dim=2)
    data = random_dataset()
    states = make_init(learner)(jnp.arange(2))
    poisoned = states._replace(critic_params=jax.tree.map(lambda p: p.at[1].set(jnp.nan), states.critic_params))
    new, metrics = jax.jit(jax.vmap(lambda s: update(learner, s, data)))(poisoned)
    assert np.asarray(new.diverged).tolist() == [False, True]
    assert np.asarray(new.diverged_step).tolist() == [-1, 0]
    assert np.isfinite(np.asarray(metrics["critic_loss"])[0])
    # The diverged seed keeps its parameters; the healthy one moves.
    old_actor = jax.tree.leaves(poisoned.actor_params)[0]
    new_actor = jax.tree.leaves(new.actor_params)[0]
    np.testing.assert_array_equal(np.asarray(new_actor)[1], np.asarray(old_actor)[1])
    assert not np.array_equal(np.asarray(new_actor)[0], np.asarray(old_actor)[0])
