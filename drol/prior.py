"""The bounded latent prior of DROL: z uniform in the d-dimensional ball of radius sqrt(d)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def ball_radius(action_dim: int) -> float:
    """Radius R = sqrt(d) of the prior ball."""
    return float(action_dim) ** 0.5


def sample_ball(key: jax.Array, shape: tuple[int, ...], action_dim: int) -> jnp.ndarray:
    """Latents uniform in the ball of radius sqrt(d); returns shape (*shape, action_dim).

    Direction v/|v| with v ~ N(0, I_d); radius R * u^(1/d) with u ~ U(0, 1).
    """
    direction_key, radius_key = jax.random.split(key)
    v = jax.random.normal(direction_key, (*shape, action_dim))
    direction = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
    u = jax.random.uniform(radius_key, (*shape, 1))
    return direction * ball_radius(action_dim) * u ** (1.0 / action_dim)


def latent_bank(bank_key: jax.Array, indices: jnp.ndarray, num_candidates: int, action_dim: int) -> jnp.ndarray:
    """The fixed bank of K latents of each transition: shape (M, K, d) for indices (M,).

    Latent k of transition i is drawn from fold_in(fold_in(bank_key, i), k), so banks are never
    stored per transition, and the bank of a smaller K is a prefix of a larger one's.
    """
    def one(index, k):
        return sample_ball(jax.random.fold_in(jax.random.fold_in(bank_key, index), k), (), action_dim)
    candidates = jnp.arange(num_candidates)
    return jax.vmap(lambda i: jax.vmap(lambda k: one(i, k))(candidates))(indices)
