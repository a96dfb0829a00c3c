"""The DROL learner as pure functions: init, one update, a scanned chunk of updates, acting.

Training is `lax.scan` over updates inside one jitted program; several seeds train together
through `vmap` over a leading seed axis of the state. The dataset lives on the device and
batches are drawn with `jax.random` inside the scan, so the host only sees each chunk's end.

Shapes: S seeds, N transitions, B batch, K candidates, d action dim.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from drol.config import DROLConfig
from drol.losses import Batch, actor_loss, critic_loss, route
from drol.networks import Actor, CriticEnsemble
from drol.prior import sample_ball
from drol.routing import ROUTING_RULES

BASE_KEY_SEED = 0  # every seed's key is fold_in(PRNGKey(BASE_KEY_SEED), seed)
BANK_STREAM = 0xBA4C  # fixed latent banks: fold_in(seed_key(seed), BANK_STREAM), then (index, k)
METRIC_NAMES = ("critic_loss", "td_error", "q_data", "target_q", "actor_loss", "bc_loss", "q_loss", "q_winner")


class TrainState(NamedTuple):
    """The whole training state of one seed (a leading seed axis when vmapped)."""

    actor_params: dict
    critic_params: dict
    target_critic_params: dict
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    key: jax.Array  # raw uint32 PRNG key (2,)
    step: jnp.ndarray  # int32 updates done
    diverged: jnp.ndarray  # bool: a loss became NaN/inf; the state is frozen from then on
    diverged_step: jnp.ndarray  # int32 update at which it diverged (-1 if never)


class Learner(NamedTuple):
    """The static part of a learner: config, dimensions, modules and optimiser."""

    config: DROLConfig
    obs_dim: int
    action_dim: int

    @property
    def actor(self) -> Actor:
        return Actor(tuple(self.config.actor_hidden), self.action_dim)

    @property
    def critic(self) -> CriticEnsemble:
        return CriticEnsemble(tuple(self.config.critic_hidden), self.config.num_critics)

    @property
    def optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.config.lr)


def seed_key(seed: int | jnp.ndarray) -> jax.Array:
    """The root key of a seed, derived from its own number only."""
    return jax.random.fold_in(jax.random.PRNGKey(BASE_KEY_SEED), seed)


def bank_key(seed: int | jnp.ndarray) -> jax.Array:
    """The key every fixed latent bank of `seed` derives from (drol.prior.latent_bank): probes and
    the fixed-bank routing ablations share it."""
    return jax.random.fold_in(seed_key(seed), BANK_STREAM)


def init_state(learner: Learner, seed: int | jnp.ndarray) -> TrainState:
    """Fresh parameters, optimiser states and key for one seed (vmap over seeds for several)."""
    key, actor_key, critic_key = jax.random.split(seed_key(seed), 3)
    obs = jnp.zeros((1, learner.obs_dim))
    act = jnp.zeros((1, learner.action_dim))
    actor_params = learner.actor.init(actor_key, obs, act)
    critic_params = learner.critic.init(critic_key, obs, act)
    return TrainState(
        actor_params=actor_params,
        critic_params=critic_params,
        target_critic_params=critic_params,
        actor_opt_state=learner.optimizer.init(actor_params),
        critic_opt_state=learner.optimizer.init(critic_params),
        key=key,
        step=jnp.zeros((), jnp.int32),
        diverged=jnp.zeros((), bool),
        diverged_step=jnp.full((), -1, jnp.int32),
    )


def sample_batch(dataset: dict[str, jnp.ndarray], key: jax.Array, batch_size: int) -> Batch:
    """Uniformly sampled batch (with replacement) from the on-device dataset (arrays of length N)."""
    idx = jax.random.randint(key, (batch_size,), 0, dataset["actions"].shape[0])
    return Batch(*(dataset[name][idx] for name in Batch._fields))


def update(learner: Learner, state: TrainState, dataset: dict[str, jnp.ndarray]) -> tuple[TrainState, dict]:
    """One DROL gradient step on a fresh batch: critic TD step, routed actor step, Polyak target.

    Both losses use the parameters from before the step (as FQL's joint update). If any loss
    is not finite, the state is frozen (parameters kept) and marked diverged at this step.
    """
    config = learner.config
    key, batch_key, latent_key, next_key = jax.random.split(state.key, 4)
    batch = sample_batch(dataset, batch_key, config.batch_size)

    (_, critic_info), critic_grads = jax.value_and_grad(critic_loss, has_aux=True)(
        state.critic_params, state.target_critic_params, state.actor_params, batch, next_key,
        actor=learner.actor, critic=learner.critic, config=config)

    latents = sample_ball(latent_key, (config.batch_size, config.num_candidates), learner.action_dim)
    _, winner_latents = route(learner.actor, state.actor_params, batch.observations, batch.actions,
                              latents, ROUTING_RULES[config.routing])
    (_, actor_info), actor_grads = jax.value_and_grad(actor_loss, has_aux=True)(
        state.actor_params, state.critic_params, batch.observations, batch.actions, winner_latents,
        actor=learner.actor, critic=learner.critic, config=config)

    critic_updates, critic_opt_state = learner.optimizer.update(critic_grads, state.critic_opt_state)
    critic_params = optax.apply_updates(state.critic_params, critic_updates)
    actor_updates, actor_opt_state = learner.optimizer.update(actor_grads, state.actor_opt_state)
    actor_params = optax.apply_updates(state.actor_params, actor_updates)
    target_critic_params = optax.incremental_update(critic_params, state.target_critic_params, config.tau)

    metrics = {**critic_info, **actor_info}
    finite = jnp.all(jnp.stack([jnp.isfinite(metrics["critic_loss"]), jnp.isfinite(metrics["actor_loss"])]))
    newly_diverged = ~state.diverged & ~finite
    keep_old = state.diverged | ~finite
    stepped = TrainState(actor_params, critic_params, target_critic_params, actor_opt_state,
                         critic_opt_state, key, state.step + 1, state.diverged | ~finite,
                         jnp.where(newly_diverged, state.step, state.diverged_step))
    frozen = state._replace(key=key, step=state.step + 1, diverged=stepped.diverged,
                            diverged_step=stepped.diverged_step)
    new_state = jax.tree.map(lambda old, new: jnp.where(keep_old, old, new), frozen, stepped)
    return new_state, {name: metrics[name] for name in METRIC_NAMES}


def train_chunk(learner: Learner, state: TrainState, dataset: dict[str, jnp.ndarray],
                num_updates: int) -> tuple[TrainState, dict]:
    """`num_updates` updates of one seed under `lax.scan`; metrics are the chunk's means (scalars)."""
    state, metrics = jax.lax.scan(lambda s, _: update(learner, s, dataset), state, None, length=num_updates)
    return state, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)


def make_train_chunk(learner: Learner, num_updates: int) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """Jitted chunk of `num_updates` updates for seed-stacked states (S, ...); dataset shared.

    The state argument is donated: its buffers are reused for the result.
    """
    def chunk(states: TrainState, dataset: dict[str, jnp.ndarray]):
        return jax.vmap(lambda s: train_chunk(learner, s, dataset, num_updates))(states)
    return jax.jit(chunk, donate_argnums=0)


def make_init(learner: Learner) -> Callable[[jnp.ndarray], TrainState]:
    """Jitted init for an array of seed numbers (S,) -> seed-stacked TrainState."""
    return jax.jit(jax.vmap(lambda seed: init_state(learner, seed)))


def act(learner: Learner, actor_params, observations: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
    """Deployed actions: one prior sample per observation, one actor pass, clipped. (n, d)."""
    latents = sample_ball(key, observations.shape[:1], learner.action_dim)
    return jnp.clip(learner.actor.apply(actor_params, observations, latents), -1.0, 1.0)
