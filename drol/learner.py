"""The DROL learner as pure functions: init, one update, a chunk of updates in a loop, acting.

Training is a loop (`lax.fori_loop`) over updates inside one jitted program; several seeds train
together through `vmap` over a leading seed axis of the state, inside the loop. The dataset lives
on the device and batches are drawn with `jax.random` inside the loop, so the host only sees each chunk's end.

Shapes: S seeds, N transitions, B batch, K candidates, d action dim.

The ablations are config fields, not separate code paths (drol.variants names them):
`latents` (fresh prior samples, or a fixed bank per transition), `routing` (nearest, random,
soft, uniform) and `refresh_interval` (owners from the current parameters every step, from a
snapshot taken every N steps, or, at 0, from a table computed once at initialisation).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from drol.config import DROLConfig
from drol.losses import Batch, actor_loss, candidate_actions, critic_loss
from drol.networks import Actor, CriticEnsemble
from drol.prior import latent_bank, sample_ball
from drol.routing import route_nearest, route_random, soft_weights

BASE_KEY_SEED = 0  # every seed's key is fold_in(PRNGKey(BASE_KEY_SEED), seed)
BANK_STREAM = 0xBA4C  # fixed latent banks: fold_in(seed_key(seed), BANK_STREAM), then (index, k)
# Batch means; batch_q and batch_q_winner are the training batch's Q, apart from the probes' q_data and q_winner
METRIC_NAMES = ("critic_loss", "td_error", "batch_q", "target_q", "actor_loss", "bc_loss", "q_loss", "batch_q_winner")


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
    bank_key: jax.Array  # key of this seed's fixed latent banks (bank_key(seed))
    routing_params: dict  # refresh_interval > 1: the actor params owners are computed with; else {}
    owners: jnp.ndarray  # refresh_interval 0 (static): (N,) int32 owner of every transition; else (0,)


class Assignment(NamedTuple):
    """What routing decided for a batch: owners (B,) int32 (for soft and uniform routing, the
    nearest candidate), and the latents (B, J, d) the actor loss trains with their weights (B, J)."""

    winners: jnp.ndarray
    latents: jnp.ndarray
    weights: jnp.ndarray


@dataclass(frozen=True)
class LearnerBase:
    """The static part of a learner: config, dimensions, and the modules and optimiser DROL and FQL share."""

    config: Any  # DROLConfig (drol.config.FQLConfig for drol.fql.FQLLearner)
    obs_dim: int
    action_dim: int
    num_transitions: int = 0  # N, the training-set size (sizes static routing's owner table)

    @property
    def actor(self) -> Actor:
        """f(s, z) -> raw action: DROL's candidate generator, FQL's one-step actor."""
        return Actor(tuple(self.config.actor_hidden), self.action_dim)

    @property
    def critic(self) -> CriticEnsemble:
        return CriticEnsemble(tuple(self.config.critic_hidden), self.config.num_critics)

    @property
    def optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.config.lr)


@dataclass(frozen=True)
class Learner(LearnerBase):
    """DROL and its routing variants (the config's latents, routing and refresh_interval)."""

    config: DROLConfig
    metric_names = METRIC_NAMES  # update's metrics, each a float32 scalar


    def init_state(self, seed: int | jnp.ndarray) -> TrainState:
        return init_state(self, seed)

    def update(self, state: TrainState, dataset: dict[str, jnp.ndarray]) -> tuple[TrainState, dict]:
        return update(self, state, dataset)

    def act(self, actor_params, observations: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
        return act(self, actor_params, observations, key)


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
    config = learner.config
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
        bank_key=bank_key(seed),
        routing_params=actor_params if config.refresh_interval > 1 else {},
        owners=jnp.zeros((learner.num_transitions if config.refresh_interval == 0 else 0,), jnp.int32),
    )


def sample_batch(dataset: dict[str, jnp.ndarray], key: jax.Array, batch_size: int) -> tuple[jnp.ndarray, Batch]:
    """Uniformly sampled batch (with replacement) from the on-device dataset (arrays of length N):
    the transition indices (B,) and the batch."""
    idx = jax.random.randint(key, (batch_size,), 0, dataset["actions"].shape[0])
    return idx, Batch(*(dataset[name][idx] for name in Batch._fields))


def batch_latents(learner: Learner, state: TrainState, indices: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
    """The K latents of each transition in the batch (B, K, d): fresh prior samples, or the
    transitions' fixed banks (drol.prior.latent_bank) when config.latents == 'bank'."""
    config = learner.config
    if config.latents == "bank":
        return latent_bank(state.bank_key, indices, config.num_candidates, learner.action_dim)
    return sample_ball(key, (indices.shape[0], config.num_candidates), learner.action_dim)


def assign(learner: Learner, state: TrainState, indices: jnp.ndarray, observations: jnp.ndarray,
           actions: jnp.ndarray, latents: jnp.ndarray, key: jax.Array) -> Assignment:
    """Route the data actions (B, d) of transitions `indices` (B,) to their candidates, without gradients.

    nearest: argmin_k |c_k - a|^2, with c_k from the current actor params (refresh_interval 1),
    the snapshot taken at the last refresh (> 1), or the owner table computed at initialisation
    (0). random: a uniform owner (key). soft / uniform: all K latents, weighted softmin(distance /
    temperature) or 1/K. Training and the probe diagnostics both route through here.
    """
    config = learner.config
    batch_size, num_candidates, _ = latents.shape
    if config.routing == "random":
        winners = route_random(key, batch_size, num_candidates)
    elif config.refresh_interval == 0:
        winners = state.owners[indices]
    else:
        params = state.routing_params if config.refresh_interval > 1 else state.actor_params
        candidates = jax.lax.stop_gradient(candidate_actions(learner.actor, params, observations, latents))
        winners = route_nearest(candidates, actions)
        if config.routing in ("soft", "uniform"):
            weights = (soft_weights(candidates, actions, config.routing_temperature) if config.routing == "soft"
                       else jnp.full((batch_size, num_candidates), 1.0 / num_candidates))
            return Assignment(winners, latents, weights)
    winner_latents = jnp.take_along_axis(latents, winners[:, None, None], axis=1)  # (B, 1, d)
    return Assignment(winners, winner_latents, jnp.ones((batch_size, 1)))


def refresh_routing(learner: Learner, state: TrainState) -> TrainState:
    """Periodic routing (refresh_interval N > 1): at every N-th step the owners' snapshot of the
    actor params becomes the current params, before the step's routing. Other configs: unchanged."""
    if learner.config.refresh_interval <= 1:
        return state
    refresh = state.step % learner.config.refresh_interval == 0
    return state._replace(routing_params=jax.tree.map(
        lambda current, snapshot: jnp.where(refresh, current, snapshot), state.actor_params, state.routing_params))


def static_owners(learner: Learner, actor_params, seed_bank_key: jax.Array, indices: jnp.ndarray,
                  observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
    """Static routing's owner of each transition (n,) int32: the nearest of its bank's K candidates
    under `actor_params` (the initial ones). The driver calls it over the training set in chunks."""
    latents = latent_bank(seed_bank_key, indices, learner.config.num_candidates, learner.action_dim)
    return route_nearest(candidate_actions(learner.actor, actor_params, observations, latents), actions)


def update(learner: Learner, state: TrainState, dataset: dict[str, jnp.ndarray]) -> tuple[TrainState, dict]:
    """One DROL gradient step on a fresh batch: critic TD step, routed actor step, Polyak target.

    Both losses use the parameters from before the step (as FQL's joint update). If any loss
    is not finite, the state is frozen (parameters kept) and marked diverged at this step.
    """
    config = learner.config
    key, batch_key, latent_key, next_key, route_key = jax.random.split(state.key, 5)
    indices, batch = sample_batch(dataset, batch_key, config.batch_size)
    state = refresh_routing(learner, state)

    next_latents = sample_ball(next_key, (config.batch_size,), learner.action_dim)
    (_, critic_info), critic_grads = jax.value_and_grad(critic_loss, has_aux=True)(
        state.critic_params, state.target_critic_params, state.actor_params, batch, next_latents,
        actor=learner.actor, critic=learner.critic, config=config)

    latents = batch_latents(learner, state, indices, latent_key)
    routed = assign(learner, state, indices, batch.observations, batch.actions, latents, route_key)
    (_, actor_info), actor_grads = jax.value_and_grad(actor_loss, has_aux=True)(
        state.actor_params, state.critic_params, batch.observations, batch.actions, routed.latents,
        routed.weights, actor=learner.actor, critic=learner.critic, config=config)

    critic_updates, critic_opt_state = learner.optimizer.update(critic_grads, state.critic_opt_state)
    critic_params = optax.apply_updates(state.critic_params, critic_updates)
    actor_updates, actor_opt_state = learner.optimizer.update(actor_grads, state.actor_opt_state)
    actor_params = optax.apply_updates(state.actor_params, actor_updates)
    target_critic_params = optax.incremental_update(critic_params, state.target_critic_params, config.tau)

    metrics = {**critic_info, **actor_info}
    stepped = state._replace(
        actor_params=actor_params, critic_params=critic_params, target_critic_params=target_critic_params,
        actor_opt_state=actor_opt_state, critic_opt_state=critic_opt_state)
    return guard_divergence(state, stepped, key, [metrics["critic_loss"], metrics["actor_loss"]]), \
        {name: metrics[name] for name in METRIC_NAMES}


def guard_divergence(state, stepped, key: jax.Array, losses: list[jnp.ndarray]):
    """The state after one update: `stepped` if every loss is finite and the seed has not diverged
    before, else `state` unchanged (frozen) and marked diverged at this step. Both carry the new
    key and step count. Works for any state with key, step, diverged and diverged_step fields."""
    finite = jnp.all(jnp.isfinite(jnp.stack(losses)))
    diverged = state.diverged | ~finite
    counters = dict(key=key, step=state.step + 1, diverged=diverged,
                    diverged_step=jnp.where(~state.diverged & ~finite, state.step, state.diverged_step))
    return jax.tree.map(lambda old, new: jnp.where(diverged, old, new), state._replace(**counters),
                        stepped._replace(**counters))


def train_chunk(learner, states, dataset: dict[str, jnp.ndarray], num_updates: int | jnp.ndarray) -> tuple[Any, dict]:
    """`num_updates` (an int32 argument: one program for every chunk length) updates of seed-stacked states (S, ...)
    in a loop; metrics are the chunk's means {name: (S,)}. The loop runs over seeds vmapped inside it (not a vmapped
    loop: its body would be traced, then batched in a second pass; the same computation, a fifth less tracing).

    Any learner with `update(state, dataset)` and `metric_names` works: DROL's Learner and drol.fql.FQLLearner."""
    update = jax.vmap(lambda state: learner.update(state, dataset))

    def step(_, carry):
        states, sums = carry
        states, metrics = update(states)
        return states, jax.tree.map(jnp.add, sums, metrics)

    num_seeds = jax.tree.leaves(states)[0].shape[0]
    zeros = {name: jnp.zeros((num_seeds,), jnp.float32) for name in learner.metric_names}  # (no trace for shapes)
    num_updates = jnp.asarray(num_updates, jnp.int32)
    states, sums = jax.lax.fori_loop(0, num_updates, step, (states, zeros))
    return states, jax.tree.map(lambda total: total / num_updates, sums)


@functools.lru_cache(maxsize=64)
def make_train_chunk(learner) -> Callable[[Any, dict, Any], tuple[Any, dict]]:
    """Jitted chunk of updates for seed-stacked states (S, ...): (states, dataset (shared), num_updates) ->
    (states, metrics {name: (S,)}).

    The state argument is donated: its buffers are reused for the result. One jitted function per learner in a
    process (learners are frozen dataclasses, equal when their config and sizes are), whatever the chunk lengths:
    a second run with the same settings reuses its traced and compiled program.
    """
    return jax.jit(functools.partial(train_chunk, learner), donate_argnums=0)


@functools.lru_cache(maxsize=64)
def make_init(learner) -> Callable[[jnp.ndarray], Any]:
    """Jitted init for an array of seed numbers (S,) -> seed-stacked state (any learner; one per learner in a
    process, as make_train_chunk)."""
    return jax.jit(jax.vmap(learner.init_state))


@functools.lru_cache(maxsize=64)
def make_act(learner) -> Callable[[Any, jnp.ndarray, jax.Array], jnp.ndarray]:
    """Jitted deployed actions of a learner, learner.act (actor_params, observations (n, obs), key) -> (n, d); one
    per learner in a process, as make_train_chunk."""
    return jax.jit(learner.act)


def act(learner: Learner, actor_params, observations: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
    """Deployed actions: one prior sample per observation, one actor pass, clipped. (n, d)."""
    latents = sample_ball(key, observations.shape[:1], learner.action_dim)
    return jnp.clip(learner.actor.apply(actor_params, observations, latents), -1.0, 1.0)
