"""Routing: which of the K candidates of a state owns the dataset action.

A routing rule is a function `(candidates (B, K, d), actions (B, d)) -> winners (B,) int32`.
The learner only asks the rule for the owner; it does not care how the owner is decided.
The paper's rule is `nearest` (top-1, recomputed every step). The ablation runner adds its
controls (static, random, soft, periodic) to `ROUTING_RULES` beside it.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp

RoutingRule = Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]


def candidate_sq_dists(candidates: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
    """Squared distances |c_k - a|^2 of shape (B, K) between candidates (B, K, d) and actions (B, d)."""
    return jnp.sum(jnp.square(candidates - actions[:, None, :]), axis=-1)


def route_nearest(candidates: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
    """k* = argmin_k |c_k - a|^2 for each state: winners of shape (B,), int32."""
    return jnp.argmin(candidate_sq_dists(candidates, actions), axis=-1).astype(jnp.int32)


ROUTING_RULES: dict[str, RoutingRule] = {"nearest": route_nearest}
