"""DROL's losses (docs/drol-spec.md section 1), written for the fast path.

Routing (drol.learner.assign) runs without gradients over the B x K candidates; the actor loss
then evaluates f(s, z_winner) for the B winners only, with the winner's latent held fixed. Its
gradient is the gradient of the paper's loss (which evaluates all B*K candidates and selects the
winner), because only the winner carries gradient and the argmin is piecewise constant. Soft
and uniform routing (ablations) pass all K latents with their weights instead.

Shapes: B batch, K candidates, d action dim, E ensemble members.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from drol.config import DROLConfig, FQLConfig
from drol.networks import Actor, CriticEnsemble


class Batch(NamedTuple):
    """A batch of transitions: observations (B, obs), actions (B, d), rewards (B,), masks (B,),
    next_observations (B, obs)."""

    observations: jnp.ndarray
    actions: jnp.ndarray
    rewards: jnp.ndarray
    masks: jnp.ndarray
    next_observations: jnp.ndarray


def candidate_actions(actor: Actor, actor_params, observations: jnp.ndarray, latents: jnp.ndarray) -> jnp.ndarray:
    """Clipped candidates c_k = clip(f(s, z_k), -1, 1): (B, K, d) from observations (B, obs), latents (B, K, d)."""
    repeated = jnp.broadcast_to(observations[:, None, :], latents.shape[:2] + observations.shape[-1:])
    return jnp.clip(actor.apply(actor_params, repeated, latents), -1.0, 1.0)


def actor_loss(actor_params, critic_params, observations: jnp.ndarray, actions: jnp.ndarray,
               latents: jnp.ndarray, weights: jnp.ndarray, *, actor: Actor, critic: CriticEnsemble,
               config: DROLConfig) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """L_actor = bc_coef * L_bc + q_coef * L_q on the trained candidates c_j = clip(f(s, z_j)).

    latents (B, J, d) and weights (B, J) come from drol.learner.assign: for DROL J = 1, the winner
    z_{k*} with weight 1 (the fast path); for soft and uniform routing J = K. With w the weights,
    L_bc = mean_B sum_J w |c_j - a|^2 / d; L_q = -mean_B sum_J w min_e Q_e(s, c_j) (critic params
    held fixed), divided by stop_grad(max(mean_B sum_J w |Q_min|, 1e-6)) when normalize_q_loss.
    """
    trained = candidate_actions(actor, actor_params, observations, latents)  # (B, J, d)
    repeated = jnp.broadcast_to(observations[:, None, :], trained.shape[:2] + observations.shape[-1:])
    weights = jax.lax.stop_gradient(weights)
    sq_dist = jnp.sum(jnp.square(trained - actions[:, None, :]), axis=-1)  # (B, J)
    bc_loss = jnp.mean(jnp.sum(weights * sq_dist, axis=-1)) / actions.shape[-1]
    q_min = jnp.min(critic.apply(jax.lax.stop_gradient(critic_params), repeated, trained), axis=0)  # (B, J)
    q_weighted = jnp.sum(weights * q_min, axis=-1)  # (B,)
    q_loss = -jnp.mean(q_weighted)
    if config.normalize_q_loss:
        q_scale = jnp.mean(jnp.sum(weights * jnp.abs(q_min), axis=-1))
        q_loss = q_loss / jax.lax.stop_gradient(jnp.maximum(q_scale, 1e-6))
    loss = config.bc_coef * bc_loss + config.q_coef * q_loss
    return loss, dict(actor_loss=loss, bc_loss=bc_loss, q_loss=q_loss, batch_q_winner=jnp.mean(q_weighted))


def critic_loss(critic_params, target_critic_params, actor_params, batch: Batch, next_latents: jnp.ndarray, *,
                actor: Actor, critic: CriticEnsemble,
                config: DROLConfig | FQLConfig) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """TD regression: mean over members and batch of (Q_j(s, a) - y)^2.

    y = r + discount * mask * Qbar(s', a'), a' = clip(f(s', z')) with one fresh prior sample z'
    per transition (next_latents (B, d): DROL's ball prior, FQL's Gaussian), Qbar the mean (or
    min, q_agg) of the target ensemble; y carries no gradient. DROL and FQL share it.
    """
    next_actions = jnp.clip(actor.apply(actor_params, batch.next_observations, next_latents), -1.0, 1.0)
    next_qs = critic.apply(target_critic_params, batch.next_observations, next_actions)
    next_q = jnp.min(next_qs, axis=0) if config.q_agg == "min" else jnp.mean(next_qs, axis=0)
    target = jax.lax.stop_gradient(batch.rewards + config.discount * batch.masks * next_q)
    qs = critic.apply(critic_params, batch.observations, batch.actions)
    loss = jnp.mean(jnp.square(qs - target))
    return loss, dict(critic_loss=loss, td_error=jnp.mean(jnp.abs(qs - target)), batch_q=jnp.mean(qs),
                      target_q=jnp.mean(target))
