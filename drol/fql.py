"""FQL, the one-step baseline DROL is compared against (docs/drol-spec.md section 2), as pure functions.

A flow BC policy v(s, x_t, t) learns the data by flow matching; a one-step actor mu(s, z),
z ~ N(0, I), is distilled from the flow's 10-step Euler actions (weight alpha) while climbing
the critic. The critic, its TD target, the data path, acting and evaluation are DROL's (drol.losses,
drol.learner): only the actor side differs. FQLLearner has the same interface as drol.learner.Learner
(init_state, update, act), so the training driver runs either.

Shapes: B batch, d action dim, E ensemble members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from drol.config import FQLConfig
from drol.learner import LearnerBase, guard_divergence, sample_batch, seed_key
from drol.losses import critic_loss
from drol.networks import Actor

METRIC_NAMES = ("critic_loss", "td_error", "batch_q", "target_q", "actor_loss", "bc_flow_loss", "distill_loss",
                "q_loss", "q_actor")


class FQLState(NamedTuple):
    """The whole training state of one FQL seed (a leading seed axis when vmapped)."""

    actor_params: dict  # one-step actor mu(s, z)
    flow_params: dict  # flow BC velocity field v(s, x_t, t)
    critic_params: dict
    target_critic_params: dict
    actor_opt_state: optax.OptState
    flow_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    key: jax.Array
    step: jnp.ndarray  # int32 updates done
    diverged: jnp.ndarray  # bool: a loss became NaN/inf; frozen from then on
    diverged_step: jnp.ndarray  # int32 update at which it diverged (-1 if never)


@dataclass(frozen=True)
class FQLLearner(LearnerBase):
    """FQL: DROL's actor network as the one-step actor mu(s, z), plus a flow policy."""

    config: FQLConfig
    metric_names = METRIC_NAMES  # update's metrics, each a float32 scalar

    @property
    def flow(self) -> Actor:
        """The velocity field v(s, x_t, t): the same MLP over concat(s, x_t, t)."""
        return Actor(tuple(self.config.actor_hidden), self.action_dim)


    def init_state(self, seed: int | jnp.ndarray) -> FQLState:
        return init_state(self, seed)

    def update(self, state: FQLState, dataset: dict[str, jnp.ndarray]) -> tuple[FQLState, dict]:
        return update(self, state, dataset)

    def act(self, actor_params, observations: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
        return act(self, actor_params, observations, key)


def init_state(learner: FQLLearner, seed: int | jnp.ndarray) -> FQLState:
    """Fresh parameters, optimiser states and key for one seed; the key derivation is DROL's."""
    key, actor_key, critic_key, flow_key = jax.random.split(seed_key(seed), 4)
    obs, act_ = jnp.zeros((1, learner.obs_dim)), jnp.zeros((1, learner.action_dim))
    actor_params = learner.actor.init(actor_key, obs, act_)
    flow_params = learner.flow.init(flow_key, obs, jnp.zeros((1, learner.action_dim + 1)))
    critic_params = learner.critic.init(critic_key, obs, act_)
    opt = learner.optimizer
    return FQLState(actor_params, flow_params, critic_params, critic_params, opt.init(actor_params),
                    opt.init(flow_params), opt.init(critic_params), key, jnp.zeros((), jnp.int32),
                    jnp.zeros((), bool), jnp.full((), -1, jnp.int32))


def flow_actions(learner: FQLLearner, flow_params, observations: jnp.ndarray, noises: jnp.ndarray) -> jnp.ndarray:
    """Euler integration of the flow from x_0 = noise over flow_steps steps, clipped: (B, d)."""
    steps = learner.config.flow_steps

    def euler(i, x):
        t = jnp.full(x.shape[:-1] + (1,), i / steps)
        return x + learner.flow.apply(flow_params, observations, jnp.concatenate([x, t], -1)) / steps
    return jnp.clip(jax.lax.fori_loop(0, steps, euler, noises), -1.0, 1.0)


def flow_bc_loss(flow_params, learner: FQLLearner, observations: jnp.ndarray, actions: jnp.ndarray,
                 key: jax.Array) -> jnp.ndarray:
    """Flow matching: mean |v(s, x_t, t) - (a - x_0)|^2, x_0 ~ N(0, I), t ~ U(0, 1), x_t = (1 - t) x_0 + t a."""
    noise_key, time_key = jax.random.split(key)
    x0 = jax.random.normal(noise_key, actions.shape)
    t = jax.random.uniform(time_key, actions.shape[:-1] + (1,))
    x_t = (1 - t) * x0 + t * actions
    velocity = learner.flow.apply(flow_params, observations, jnp.concatenate([x_t, t], -1))
    return jnp.mean(jnp.square(velocity - (actions - x0)))


def actor_loss(actor_params, critic_params, observations: jnp.ndarray, noises: jnp.ndarray,
               flow_targets: jnp.ndarray, *, learner: FQLLearner,
               alpha: float, q_coef: float) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """alpha * mean |mu(s, z) - flow(s, z)|^2 + q_coef * L_q, L_q = -mean_B mean_E Q_e(s, clip(mu(s, z)))
    (divided by stop_grad(mean |Q|) when normalize_q_loss); flow targets (B, d) carry no gradient."""
    actions = learner.actor.apply(actor_params, observations, noises)
    distill_loss = jnp.mean(jnp.square(actions - jax.lax.stop_gradient(flow_targets)))
    q = jnp.mean(learner.critic.apply(jax.lax.stop_gradient(critic_params), observations,
                                      jnp.clip(actions, -1.0, 1.0)), axis=0)
    q_loss = -jnp.mean(q)
    if learner.config.normalize_q_loss:
        q_loss = q_loss / jax.lax.stop_gradient(jnp.maximum(jnp.mean(jnp.abs(q)), 1e-6))
    loss = alpha * distill_loss + q_coef * q_loss
    return loss, dict(distill_loss=distill_loss, q_loss=q_loss, q_actor=jnp.mean(q))


def update(learner: FQLLearner, state: FQLState, dataset: dict[str, jnp.ndarray]) -> tuple[FQLState, dict]:
    """One FQL step: critic TD step (next actions from the one-step actor), flow BC step, one-step
    actor step, Polyak target. All losses use the parameters from before the step."""
    config = learner.config
    key, batch_key, next_key, flow_key, noise_key = jax.random.split(state.key, 5)
    _, batch = sample_batch(dataset, batch_key, config.batch_size)

    next_noises = jax.random.normal(next_key, batch.actions.shape)
    (_, critic_info), critic_grads = jax.value_and_grad(critic_loss, has_aux=True)(
        state.critic_params, state.target_critic_params, state.actor_params, batch, next_noises,
        actor=learner.actor, critic=learner.critic, config=config)
    flow_loss, flow_grads = jax.value_and_grad(flow_bc_loss)(state.flow_params, learner, batch.observations,
                                                             batch.actions, flow_key)
    noises = jax.random.normal(noise_key, batch.actions.shape)
    targets = flow_actions(learner, state.flow_params, batch.observations, noises)
    (one_step_loss, actor_info), actor_grads = jax.value_and_grad(actor_loss, has_aux=True)(
        state.actor_params, state.critic_params, batch.observations, noises, targets, learner=learner,
        alpha=config.alpha, q_coef=config.q_coef)

    opt = learner.optimizer
    new_params = {}
    for name, grads in (("critic", critic_grads), ("flow", flow_grads), ("actor", actor_grads)):
        updates, new_params[name + "_opt_state"] = opt.update(grads, getattr(state, name + "_opt_state"))
        new_params[name + "_params"] = optax.apply_updates(getattr(state, name + "_params"), updates)
    new_params["target_critic_params"] = optax.incremental_update(new_params["critic_params"],
                                                                  state.target_critic_params, config.tau)
    metrics = {**critic_info, **actor_info, "bc_flow_loss": flow_loss, "actor_loss": flow_loss + one_step_loss}
    new_state = guard_divergence(state, state._replace(**new_params), key,
                                 [metrics["critic_loss"], metrics["actor_loss"]])
    return new_state, {name: metrics[name] for name in METRIC_NAMES}


def act(learner: FQLLearner, actor_params, observations: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
    """Deployed actions: one Gaussian noise sample per observation, one actor pass, clipped. (n, d)."""
    noises = jax.random.normal(key, observations.shape[:1] + (learner.action_dim,))
    return jnp.clip(learner.actor.apply(actor_params, observations, noises), -1.0, 1.0)
