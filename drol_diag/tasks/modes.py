"""The embedded `modes` family: a one-step contextual bandit with several supported action modes per
state, of different value; the best mode is usually not the one nearest a given dataset action (a
dataset action comes from a uniformly chosen mode). No download, no simulator, scored in closed form.

Reference levels: "random supported mode" (a uniformly random mode's centre per state: exactly the mean
of the M "always play mode m" scores, the score being linear in the rewards; about 0.62), "dataset
average" (the mean of the mode centres, between the modes: near 0), "oracle" (the highest mode, 1.0).

Ground truth: the reward r(s, a) = sum_m h_m exp(-|a - c_m(s)|^2 / (2 w^2)) is deterministic, so it is
the true value; the behaviour log-density is the equal-weight mixture of N(c_m(s), action_noise^2 I),
exact but for clipping to [-1, 1] (beyond 8 standard deviations with the defaults: below 1e-14).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from drol_diag.tasks import onestep
from drol_diag.tasks.base import UNDERTRAINED_REFERENCE, Evaluator, Task
from drol_diag.tasks.onestep import DATASET_AVERAGE, ORACLE


@dataclass(frozen=True)
class ModesSpec:
    """Parameters of a `modes` task. Generation is deterministic from `seed`."""

    action_dim: int = 2  # d
    obs_dim: int = 2  # states uniform in [-1, 1]^obs_dim
    num_modes: int = 4  # M supported action modes per state
    radius: float = 0.6  # distance of each mode centre from the origin
    max_rotation: float = math.pi / 2  # the state rotates the modes by up to this angle per plane
    action_noise: float = 0.05  # std of the Gaussian noise around the chosen mode (dataset)
    bump_width: float = 0.15  # std of each Gaussian reward bump
    top_value: float = 1.0  # height of the best mode's bump
    bottom_value: float = 0.25  # height of the worst mode's bump (heights linear in between)
    num_transitions: int = 20_000  # training transitions
    num_validation: int = 2_000  # held-out transitions
    eval_states: int = 4096  # fresh states per evaluation
    seed: int = 0  # seed of the task geometry and data


MODES_TASKS: dict[str, ModesSpec] = {
    "modes-2d": ModesSpec(),
    "modes-5d": ModesSpec(action_dim=5, obs_dim=5, num_modes=6),
}


class ModesGeometry(onestep.OneStepGeometry):
    """Closed-form geometry and reward of a `modes` task (jnp functions, usable under jit)."""

    def __init__(self, spec: ModesSpec):
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        d, m = spec.action_dim, spec.num_modes
        if m <= 2 * d:  # vertices of the cross-polytope: e1, -e1, e2, -e2, ...
            directions = np.zeros((m, d))
            directions[np.arange(m), np.arange(m) // 2] = np.where(np.arange(m) % 2 == 0, 1.0, -1.0)
        else:  # more modes than the cross-polytope has vertices: random unit directions
            v = rng.normal(size=(m, d))
            directions = v / np.linalg.norm(v, axis=-1, keepdims=True)
        self.directions = jnp.asarray(directions, jnp.float32)  # (M, d)
        heights = np.linspace(spec.top_value, spec.bottom_value, m)
        self.heights = jnp.asarray(rng.permutation(heights), jnp.float32)  # (M,)
        # Each Givens plane (i, i+1) turns by max_rotation * mean(w_i * s), w_i in {-1, +1}^obs.
        self.plane_weights = onestep.plane_weights(rng, d, spec.obs_dim)

    def centres(self, observations: jnp.ndarray) -> jnp.ndarray:
        """Mode centres (n, M, d) for observations (n, obs_dim)."""
        angles = onestep.state_angles(observations, self.plane_weights, self.spec.max_rotation)  # (n, d-1)
        points = jnp.broadcast_to(self.spec.radius * self.directions, (observations.shape[0], *self.directions.shape))
        return onestep.rotate(points, angles)

    def mode_centers(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The Task's `mode_centers`: the centres (n, M, d)."""
        return self.centres(observations)

    def reward(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """r(s, a) = sum_m h_m exp(-|a - c_m(s)|^2 / (2 w^2)); shape (n,)."""
        sq = jnp.sum(jnp.square(actions[:, None, :] - self.centres(observations)), axis=-1)
        return jnp.sum(self.heights * jnp.exp(-sq / (2 * self.spec.bump_width**2)), axis=-1)

    def true_value(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """The expected reward of (s, a): the reward itself (deterministic); shape (n,)."""
        return self.reward(observations, actions)

    def behavior_log_density(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """log (1/M) sum_m N(a; c_m(s), action_noise^2 I) (module docstring: exact but for clipping); (n,)."""
        d, sigma = self.spec.action_dim, self.spec.action_noise
        sq = jnp.sum(jnp.square(actions[:, None, :] - self.centres(observations)), axis=-1)  # (n, M)
        log_normal = -sq / (2 * sigma**2) - 0.5 * d * jnp.log(2 * jnp.pi * sigma**2)
        return jax.scipy.special.logsumexp(log_normal, axis=-1) - jnp.log(self.spec.num_modes)

    def best_value(self, observations: jnp.ndarray) -> jnp.ndarray:
        """Value of the best supported mode, max_m r(s, c_m(s)); shape (n,)."""
        centres = self.centres(observations)
        values = jax.vmap(lambda c: self.reward(observations, c), in_axes=1, out_axes=1)(centres)
        return jnp.max(values, axis=-1)

    def best_action(self, observations: jnp.ndarray) -> jnp.ndarray:
        """Centre of the highest mode (the oracle policy); shape (n, d)."""
        return self.centres(observations)[:, jnp.argmax(self.heights)]

    def mean_action(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The conditional mean of the data actions, the mean of the mode centres (a BC policy's limit); (n, d)."""
        return jnp.mean(self.centres(observations), axis=1)

    def sample_actions(self, key: jax.Array, observations: jnp.ndarray) -> tuple[jnp.ndarray, dict]:
        """A uniform mode plus Gaussian noise per state: actions (n, d) and the column `modes` (n,)."""
        _, mode_key, noise_key = jax.random.split(key, 3)
        modes = jax.random.randint(mode_key, (observations.shape[0],), 0, self.spec.num_modes)
        centres = jnp.take_along_axis(self.centres(observations), modes[:, None, None], axis=1)[:, 0]
        return centres + self.spec.action_noise * jax.random.normal(noise_key, centres.shape), dict(modes=modes)

    def reference_actions(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The M mode centres, the dataset average, the oracle's; (n, M + 2, d)."""
        return jnp.concatenate([self.centres(observations), self.mean_action(observations)[:, None],
                                self.best_action(observations)[:, None]], axis=1)

    def reference_groups(self) -> dict[str, tuple[int, ...]]:
        m = self.spec.num_modes
        return {UNDERTRAINED_REFERENCE: tuple(range(m)), DATASET_AVERAGE: (m,), ORACLE: (m + 1,)}


def modes_evaluator(spec: ModesSpec, geometry: ModesGeometry) -> Evaluator:
    """The task's `evaluate` (onestep.one_step_evaluator)."""
    return onestep.one_step_evaluator(spec, geometry)


def reference_levels(spec: ModesSpec) -> dict[str, float]:
    """{random supported mode, dataset average, oracle: score} under the task's evaluate (onestep)."""
    return onestep.reference_levels(spec, ModesGeometry)


def modes_task(name: str, spec: ModesSpec | None = None) -> Task:
    """Build a `modes` task (deterministic from spec.seed); `spec` overrides the named defaults."""
    return onestep.one_step_task(name, spec or MODES_TASKS[name], ModesGeometry)
