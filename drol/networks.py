"""Networks of DROL: an MLP actor f(s, z) and a LayerNorm Q ensemble (docs/drol-spec.md section 1).

All MLPs use GELU. Initialisation follows FQL's networks (variance scaling 1.0, fan_avg,
uniform). Shapes: observations (..., obs_dim), latents and actions (..., action_dim).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

default_init = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")


class MLP(nn.Module):
    """Dense -> GELU (-> LayerNorm) for each hidden width, then a linear output layer."""

    hidden: Sequence[int]  # widths of the hidden layers
    out_dim: int  # size of the linear output
    layer_norm: bool = False  # LayerNorm after each hidden activation (critic: on)

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for width in self.hidden:
            x = nn.gelu(nn.Dense(width, kernel_init=default_init)(x))
            if self.layer_norm:
                x = nn.LayerNorm()(x)
        return nn.Dense(self.out_dim, kernel_init=default_init)(x)


class Actor(nn.Module):
    """One-step actor f(s, z) -> raw action (..., action_dim); callers clip it to [-1, 1]."""

    hidden: Sequence[int]
    action_dim: int

    @nn.compact
    def __call__(self, observations: jnp.ndarray, latents: jnp.ndarray) -> jnp.ndarray:
        x = jnp.concatenate([observations, latents], axis=-1)
        return MLP(self.hidden, self.action_dim)(x)


class CriticEnsemble(nn.Module):
    """Ensemble of `num_critics` Q networks; returns Q values of shape (num_critics, ...)."""

    hidden: Sequence[int]
    num_critics: int = 2

    @nn.compact
    def __call__(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        ensemble = nn.vmap(
            MLP,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_critics,
        )
        x = jnp.concatenate([observations, actions], axis=-1)
        return ensemble(self.hidden, 1, layer_norm=True)(x)[..., 0]
