"""The embedded `cliff` family: a one-step contextual bandit whose value rises across the data's support
up to its edge and drops sharply just beyond it, where there are no data. A learned critic fitted on
the data tends to extrapolate the rise past the edge; a policy that follows it leaves the support and
falls off the cliff. The best supported action is on the edge.

Geometry, per state s: a direction e(s) (the first axis turned by onestep.rotate, each plane by up to
`max_rotation`); an action's coordinate along it z = a . e(s) and its distance across it q = |a - z e(s)|.
- the data: z uniform on [edge - depth, edge] (`edge`, `depth`), and Gaussian noise of std
  `spread` in each of the d - 1 directions across e(s): no data beyond the edge (z > edge);
- the value (= the deterministic reward): v(s, a) = f(z) exp(-q^2 / (2 w^2)), w = `value_width`,
  f rising linearly from `bottom_value` at the back of the support (z = edge - depth) to `top_value`
  at the edge (the same line continued behind the back, floored at 0), and beyond the edge
  f(z) = top_value exp(-(z - edge)^2 / (2 `drop_width`^2)): a steep drop to 0. Its maximum, top_value,
  is at the edge on the axis (q = 0): the oracle action edge * e(s).

Ground truth: `true_value` is v (closed form). `behavior_log_density` is closed form:
log p(a | s) = -log(depth) - (d - 1)/2 log(2 pi spread^2) - q^2 / (2 spread^2) for edge - depth <= z <= edge,
and -inf outside that slab (no data there). Exact but for clipping to [-1, 1], which with the
defaults cuts mass beyond 7 standard deviations (below 1e-12).

Reference levels (onestep): "random behaviour action" (about 0.57 in 2-D, 0.49 in 5, 8 and 21-D),
"dataset average" (the middle of the support: about 0.6), "oracle" (the edge on the axis, 1.0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from drol_diag.tasks import onestep
from drol_diag.tasks.base import Task


@dataclass(frozen=True)
class CliffSpec:
    """Parameters of a `cliff` task (module docstring). Generation is deterministic from `seed`."""

    action_dim: int = 2  # d
    obs_dim: int = 2  # states uniform in [-1, 1]^obs_dim
    max_rotation: float = math.pi / 2  # the state turns the value direction by up to this angle per plane
    edge: float = 0.3  # the support's edge along the value direction (distance from the origin)
    depth: float = 0.7  # the support spans [edge - depth, edge] along the value direction (data uniform there)
    spread: float = 0.08  # std of the data across the value direction (each of the d - 1 others)
    value_width: float = 0.25  # w, std of the value's fall-off across the value direction
    top_value: float = 1.0  # value at the edge (the best supported action)
    bottom_value: float = 0.2  # value at the back of the support, linear in z up to the edge
    drop_width: float = 0.03  # beyond the edge the value falls as exp(-(z - edge)^2 / (2 drop_width^2))
    num_transitions: int = 20_000  # training transitions
    num_validation: int = 2_000  # held-out transitions
    eval_states: int = 4096  # fresh states per evaluation
    seed: int = 0  # seed of the task geometry and data


CLIFF_TASKS: dict[str, CliffSpec] = {
    "cliff-2d": CliffSpec(),
    "cliff-5d": CliffSpec(action_dim=5, obs_dim=5),
    # w grows with the d - 1 noise dims across the axis so that a behaviour draw keeps about half the top value
    "cliff-8d": CliffSpec(action_dim=8, obs_dim=8, value_width=0.33),
    "cliff-21d": CliffSpec(action_dim=21, obs_dim=21, value_width=0.57),
}


class CliffGeometry(onestep.OneStepGeometry):
    """Closed-form geometry, value and behaviour density of a `cliff` task (jnp, usable under jit)."""

    def __init__(self, spec: CliffSpec):
        if not 0 < spec.depth or spec.action_dim < 1:
            raise ValueError(f"cliff task: depth {spec.depth}, action_dim {spec.action_dim}; valid: depth > 0, "
                             "action_dim >= 1")
        self.spec = spec
        self.plane_weights = onestep.plane_weights(np.random.default_rng(spec.seed), spec.action_dim, spec.obs_dim)

    def direction(self, observations: jnp.ndarray) -> jnp.ndarray:
        """e(s), the unit direction in which the value rises; shape (n, d)."""
        first_axis = jnp.zeros((observations.shape[0], self.spec.action_dim)).at[:, 0].set(1.0)
        return onestep.rotate(first_axis, onestep.state_angles(observations, self.plane_weights,
                                                                self.spec.max_rotation))

    def coordinates(self, observations: jnp.ndarray, actions: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        """(z (n,), q^2 (n,)): the action's coordinate along e(s) and its squared distance across it."""
        z = jnp.sum(actions * self.direction(observations), axis=-1)
        return z, jnp.maximum(jnp.sum(jnp.square(actions), axis=-1) - z**2, 0.0)

    def along_value(self, z: jnp.ndarray) -> jnp.ndarray:
        """f(z): the value on the axis (module docstring); shape of z."""
        spec = self.spec
        ramp = spec.bottom_value + (spec.top_value - spec.bottom_value) * (z - (spec.edge - spec.depth)) / spec.depth
        drop = spec.top_value * jnp.exp(-jnp.square(jnp.maximum(z - spec.edge, 0.0)) / (2 * spec.drop_width**2))
        return jnp.where(z <= spec.edge, jnp.maximum(ramp, 0.0), drop)

    def true_value(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """v(s, a) = f(z) exp(-q^2 / (2 w^2)), the deterministic reward; shape (n,)."""
        z, across = self.coordinates(observations, actions)
        return self.along_value(z) * jnp.exp(-across / (2 * self.spec.value_width**2))

    def behavior_log_density(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """log p(a | s) (module docstring): uniform along, Gaussian across, -inf beyond the support; (n,)."""
        spec = self.spec
        z, across = self.coordinates(observations, actions)
        inside = (z >= spec.edge - spec.depth) & (z <= spec.edge)
        log_p = (-math.log(spec.depth) - 0.5 * (spec.action_dim - 1) * math.log(2 * math.pi * spec.spread**2)
                 - across / (2 * spec.spread**2))
        return jnp.where(inside, log_p, -jnp.inf)

    def sample_actions(self, key: jax.Array, observations: jnp.ndarray) -> tuple[jnp.ndarray, dict]:
        """z uniform on the support, Gaussian across the value direction (module docstring); (n, d), {}."""
        spec = self.spec
        _, z_key, noise_key = jax.random.split(key, 3)
        direction = self.direction(observations)
        z = spec.edge - spec.depth * jax.random.uniform(z_key, (observations.shape[0], 1))
        noise = jax.random.normal(noise_key, direction.shape)
        across = noise - jnp.sum(noise * direction, axis=-1, keepdims=True) * direction
        return z * direction + spec.spread * across, {}

    def best_action(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The edge on the axis, edge * e(s): the oracle; shape (n, d)."""
        return self.spec.edge * self.direction(observations)

    def mean_action(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The conditional mean of the data actions, the middle of the support; shape (n, d)."""
        return (self.spec.edge - self.spec.depth / 2) * self.direction(observations)


def reference_levels(spec: CliffSpec) -> dict[str, float]:
    """{random behaviour action, dataset average, oracle: score} under the task's evaluate (onestep)."""
    return onestep.reference_levels(spec, CliffGeometry)


def cliff_task(name: str, spec: CliffSpec | None = None) -> Task:
    """Build a `cliff` task (deterministic from spec.seed); `spec` overrides the named defaults."""
    return onestep.one_step_task(name, spec or CLIFF_TASKS[name], CliffGeometry)
