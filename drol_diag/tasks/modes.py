"""The embedded `modes` family: a one-step contextual bandit with several supported action modes per
state, of different value; the best mode is usually not the one nearest a given dataset action (a
dataset action comes from a uniformly chosen mode). No download, no simulator, scored in closed form.

Reference levels (`Task.reference_levels`, `reference_levels(spec)`), each scored with the task's own
`evaluate` on the evaluation states of seed 0, computed on first use and cached per spec:
- "random supported mode": a policy that picks one of the M supported modes uniformly at random per
  state and plays its centre. Its expected score, exactly: the mean of the M scores of "always play
  mode m" (the score is linear in the per-state rewards). About 0.62 with the default heights (their
  mean is 0.625). A run below it has not learned to prefer better modes: undertrained, not a finding.
- "dataset average": the conditional mean of the data actions (a unimodal regression policy's limit),
  which falls between the modes (near 0 here).
- "oracle": the centre of the highest mode at every state (1.0 by the score's normalisation).

Ground truth (`Task.true_value`, `Task.behavior_log_density`, `Task.mode_centers`; drol_diag.tasks.base):
- true value: the reward is deterministic, r(s, a) = sum_m h_m exp(-|a - c_m(s)|^2 / (2 w^2)), so the
  true value is the reward function itself;
- behaviour log-density: the equal-weight mixture of the M Gaussians N(c_m(s), action_noise^2 I), exact
  for the unclipped data; the data are clipped to [-1, 1], which moves the mass beyond the box onto its
  faces; with the defaults (centres at radius 0.6, noise 0.05) that mass is beyond 8 standard
  deviations (below 1e-14), so the density is exact to float precision;
- mode centres: the M centres c_m(s) (ModesGeometry.centres).
Shared parts (states, evaluation, rotations, reference levels): drol_diag.tasks.onestep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from drol_diag.tasks import onestep
from drol_diag.tasks.base import UNDERTRAINED_REFERENCE, Evaluator, Task
from drol_diag.tasks.onestep import DATASET_AVERAGE, ORACLE, REFERENCE_SEED, LazyLevels  # noqa: F401 (re-exported)

RANDOM_MODE = UNDERTRAINED_REFERENCE


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
        """The dataset-average (BC) policy: the conditional mean of the data actions, i.e. the mean
        of the mode centres, which a unimodal regression policy converges to; shape (n, d)."""
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
        return {RANDOM_MODE: tuple(range(m)), DATASET_AVERAGE: (m,), ORACLE: (m + 1,)}


def modes_evaluator(spec: ModesSpec, geometry: ModesGeometry) -> Evaluator:
    """The task's `evaluate`: the mean reward of the policy's actions on `spec.eval_states` fresh states
    (drawn from (spec.seed, seed)), relative to the best mode's (ModesGeometry.score)."""
    return onestep.one_step_evaluator(spec, geometry)


def reference_levels(spec: ModesSpec) -> dict[str, float]:
    """{RANDOM_MODE, DATASET_AVERAGE, ORACLE: score} under the task's evaluate (module docstring);
    deterministic, about a second of compilation the first time, cached per spec."""
    return onestep.reference_levels(spec, ModesGeometry)


def modes_task(name: str, spec: ModesSpec | None = None) -> Task:
    """Build a `modes` task (deterministic from spec.seed); `spec` overrides the named defaults."""
    return onestep.one_step_task(name, spec or MODES_TASKS[name], ModesGeometry)
