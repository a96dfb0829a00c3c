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
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from drol_diag.tasks.base import UNDERTRAINED_REFERENCE, Evaluator, Policy, Task

RANDOM_MODE, DATASET_AVERAGE, ORACLE = UNDERTRAINED_REFERENCE, "dataset average", "oracle"
REFERENCE_SEED = 0  # the evaluation seed whose states score the reference policies


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


class ModesGeometry:
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
        self.plane_weights = jnp.asarray(rng.choice([-1.0, 1.0], size=(max(d - 1, 1), spec.obs_dim)), jnp.float32)

    def centres(self, observations: jnp.ndarray) -> jnp.ndarray:
        """Mode centres (n, M, d) for observations (n, obs_dim)."""
        d = self.spec.action_dim
        angles = self.spec.max_rotation * (observations @ self.plane_weights.T) / self.spec.obs_dim  # (n, d-1)
        points = jnp.broadcast_to(self.spec.radius * self.directions, (observations.shape[0], *self.directions.shape))
        for plane in range(d - 1):
            cos, sin = jnp.cos(angles[:, plane])[:, None], jnp.sin(angles[:, plane])[:, None]
            x, y = points[..., plane], points[..., plane + 1]
            points = points.at[..., plane].set(cos * x - sin * y).at[..., plane + 1].set(sin * x + cos * y)
        return points

    def reward(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """r(s, a) = sum_m h_m exp(-|a - c_m(s)|^2 / (2 w^2)); shape (n,)."""
        sq = jnp.sum(jnp.square(actions[:, None, :] - self.centres(observations)), axis=-1)
        return jnp.sum(self.heights * jnp.exp(-sq / (2 * self.spec.bump_width**2)), axis=-1)

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

    def sample(self, key: jax.Array, n: int) -> dict[str, jnp.ndarray]:
        """n transitions: a uniform mode plus Gaussian noise, horizon 1 (masks 0)."""
        state_key, mode_key, noise_key = jax.random.split(key, 3)
        observations = jax.random.uniform(state_key, (n, self.spec.obs_dim), minval=-1.0, maxval=1.0)
        modes = jax.random.randint(mode_key, (n,), 0, self.spec.num_modes)
        centres = jnp.take_along_axis(self.centres(observations), modes[:, None, None], axis=1)[:, 0]
        noise = self.spec.action_noise * jax.random.normal(noise_key, centres.shape)
        actions = jnp.clip(centres + noise, -1.0, 1.0)
        return dict(observations=observations, actions=actions, rewards=self.reward(observations, actions),
                    masks=jnp.zeros(n), next_observations=observations, modes=modes)

    def score(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """Expected reward of the actions over the states, relative to the best mode's (1.0 = best)."""
        return jnp.mean(self.reward(observations, actions)) / jnp.mean(self.best_value(observations))


def modes_evaluator(spec: ModesSpec, geometry: ModesGeometry) -> Evaluator:
    """The task's `evaluate`: the mean reward of the policy's actions on `spec.eval_states` fresh states
    (drawn from (spec.seed, seed)), relative to the best mode's (ModesGeometry.score)."""
    eval_key = jax.random.split(jax.random.PRNGKey(spec.seed), 3)[2]
    score_fn = jax.jit(geometry.score)

    def evaluate(policy: Policy, num_episodes: int, seed: int) -> dict:
        """Score on `spec.eval_states` fresh states (each a one-step episode); num_episodes unused."""
        del num_episodes
        states = jax.random.uniform(jax.random.fold_in(eval_key, seed), (spec.eval_states, spec.obs_dim),
                                    minval=-1.0, maxval=1.0)
        actions = np.asarray(policy(np.asarray(states)), np.float32)
        return {"score": float(score_fn(states, jnp.asarray(actions)))}

    return evaluate


def reference_levels(spec: ModesSpec) -> dict[str, float]:
    """{RANDOM_MODE, DATASET_AVERAGE, ORACLE: score} under the task's evaluate (module docstring);
    deterministic, about a second of compilation the first time, cached per spec."""
    return dict(_reference_levels(spec))


@functools.cache
def _reference_levels(spec: ModesSpec) -> tuple[tuple[str, float], ...]:
    geometry = ModesGeometry(spec)
    evaluate = modes_evaluator(spec, geometry)
    # Every reference policy's actions in one compiled program: (n, M + 2, d), the M mode centres, the dataset
    # average, the oracle's; policy i plays column i.
    actions = jax.jit(lambda states: jnp.concatenate([geometry.centres(states), geometry.mean_action(states)[:, None],
                                                      geometry.best_action(states)[:, None]], axis=1))
    score = lambda i: evaluate(lambda states: np.asarray(actions(states))[:, i], 1, REFERENCE_SEED)["score"]
    per_mode = [score(m) for m in range(spec.num_modes)]
    levels = (float(np.mean(per_mode)), score(spec.num_modes), score(spec.num_modes + 1))
    return tuple(zip((RANDOM_MODE, DATASET_AVERAGE, ORACLE), (round(v, 6) for v in levels)))  # (float32 noise off)


class LazyLevels(Mapping):
    """A task's reference levels as a read-only {name: score}, computed on first access (`reference_levels`;
    training never needs them)."""

    def __init__(self, spec: ModesSpec):
        self.spec = spec

    @functools.cached_property
    def _levels(self) -> dict[str, float]:
        return reference_levels(self.spec)

    def __getitem__(self, name: str) -> float:
        return self._levels[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._levels)

    def __len__(self) -> int:
        return len(self._levels)


def modes_task(name: str, spec: ModesSpec | None = None) -> Task:
    """Build a `modes` task (deterministic from spec.seed); `spec` overrides the named defaults."""
    spec = spec or MODES_TASKS[name]
    geometry = ModesGeometry(spec)
    key = jax.random.PRNGKey(spec.seed)
    data_key, val_key, _ = jax.random.split(key, 3)
    to_numpy = lambda d: {k: np.asarray(v, np.int32 if k == "modes" else np.float32) for k, v in d.items()}
    dataset = to_numpy(geometry.sample(data_key, spec.num_transitions))
    validation = to_numpy(geometry.sample(val_key, spec.num_validation))
    return Task(name=name, dataset=dataset, validation=validation, evaluate=modes_evaluator(spec, geometry),
                reference_levels=LazyLevels(spec))
