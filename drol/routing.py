"""Routing: which of a state's K candidates the dataset action trains, and with what weight.

DROL's rule is `nearest` (top-1, recomputed every step). The ablations add `random` (a uniform
owner), `soft` (every candidate weighted by softmin(distance / temperature)) and `uniform` (every
candidate with weight 1/K). drol.learner.assign decides which rule and which parameters apply.

Shapes: B batch, K candidates, d action dim.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def candidate_sq_dists(candidates: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
    """Squared distances |c_k - a|^2 of shape (B, K) between candidates (B, K, d) and actions (B, d)."""
    return jnp.sum(jnp.square(candidates - actions[:, None, :]), axis=-1)


def route_nearest(candidates: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
    """k* = argmin_k |c_k - a|^2 for each state: winners of shape (B,), int32."""
    return jnp.argmin(candidate_sq_dists(candidates, actions), axis=-1).astype(jnp.int32)


def route_random(key: jax.Array, batch_size: int, num_candidates: int) -> jnp.ndarray:
    """An owner drawn uniformly from the K candidates of each state, ignoring distance: (B,) int32."""
    return jax.random.randint(key, (batch_size,), 0, num_candidates, jnp.int32)


def soft_weights(candidates: jnp.ndarray, actions: jnp.ndarray, temperature: float) -> jnp.ndarray:
    """softmin(|c_k - a| / temperature) over the K candidates: (B, K), rows sum to 1.

    As temperature -> 0 it is one-hot on the nearest candidate; as it -> inf, uniform 1/K.
    """
    distances = jnp.sqrt(candidate_sq_dists(candidates, actions))
    return jax.nn.softmax(-distances / temperature, axis=-1)
