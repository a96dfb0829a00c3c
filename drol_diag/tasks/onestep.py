"""What the embedded one-step tasks (`modes`, `arc`, `cliff`) share: states uniform in [-1, 1]^obs_dim,
horizon 1 (masks 0, next observation = observation), a deterministic reward equal to the true value,
state-dependent rotations of the action space, a closed-form `evaluate`, and reference levels.

A family defines a frozen Spec dataclass (obs_dim, action_dim, max_rotation, top_value, num_transitions,
num_validation, eval_states, seed, ...) and a `OneStepGeometry` subclass; `one_step_task` makes the Task.
Score: the mean true value of the policy's actions over `eval_states` fresh states divided by the best
supported action's (1.0 = the best supported action at every state).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from drol_diag.programs import KeptProgram
from drol_diag.tasks.base import VISITED, Evaluator, Policy, Task, Visited

REFERENCE_SEED = 0  # the evaluation seed whose states score the reference policies
DATASET_AVERAGE, ORACLE = "dataset average", "oracle"
RANDOM_BEHAVIOUR = "random behaviour action"  # arc, cliff: a fresh draw from the behaviour policy per state
BEHAVIOUR_DRAWS = 16  # behaviour-action draws per state averaged into the RANDOM_BEHAVIOUR level


def uniform_states(key: jax.Array, n: int, obs_dim: int) -> jnp.ndarray:
    """n states uniform in [-1, 1]^obs_dim; shape (n, obs_dim)."""
    return jax.random.uniform(key, (n, obs_dim), minval=-1.0, maxval=1.0)


def plane_weights(rng: np.random.Generator, action_dim: int, obs_dim: int) -> jnp.ndarray:
    """Signs w (max(d - 1, 1), obs_dim) in {-1, +1}: plane (i, i+1) turns by max_rotation * mean(w_i * s)."""
    return jnp.asarray(rng.choice([-1.0, 1.0], size=(max(action_dim - 1, 1), obs_dim)), jnp.float32)


def state_angles(observations: jnp.ndarray, weights: jnp.ndarray, max_rotation: float) -> jnp.ndarray:
    """Angle (n, d - 1) of each Givens plane (i, i+1) per state (n, obs_dim), in [-max_rotation, max_rotation]."""
    return max_rotation * (observations @ weights.T) / observations.shape[-1]


def rotate(points: jnp.ndarray, angles: jnp.ndarray, inverse: bool = False) -> jnp.ndarray:
    """Turn points (n, ..., d) by the Givens rotations in planes (0, 1), ..., (d-2, d-1) with angles (n, d - 1),
    in that order; `inverse` undoes it. Same shape as points."""
    points, d = jnp.asarray(points), points.shape[-1]
    planes = range(d - 1)
    for plane in reversed(planes) if inverse else planes:
        angle = -angles[:, plane] if inverse else angles[:, plane]
        shape = (-1,) + (1,) * (points.ndim - 2)
        cos, sin = jnp.cos(angle).reshape(shape), jnp.sin(angle).reshape(shape)
        x, y = points[..., plane], points[..., plane + 1]
        points = points.at[..., plane].set(cos * x - sin * y).at[..., plane + 1].set(sin * x + cos * y)
    return points


class OneStepGeometry:
    """Closed-form geometry of a one-step task: jnp functions of states (n, obs_dim) and actions (n, d),
    usable under jit. Subclasses set `self.spec` and define the methods that raise NotImplementedError;
    `sample_actions` may use jax.random.split(key, 3)[1:] ([0] draws the states). A reference level is the
    mean score of its `reference_groups` columns of `reference_actions`.
    """

    spec: Any
    mode_centers: Callable[[jnp.ndarray], jnp.ndarray] | None = None  # (n, obs_dim) -> (n, M, d), families with modes

    def sample_actions(self, key: jax.Array, observations: jnp.ndarray) -> tuple[jnp.ndarray, dict]:
        """The behaviour policy: actions (n, d) and extra columns {name: (n,)}."""
        raise NotImplementedError

    def true_value(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        raise NotImplementedError

    def behavior_log_density(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        raise NotImplementedError

    def best_value(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The best supported action's value (n,), the score's normaliser: default `top_value` everywhere."""
        return jnp.full(observations.shape[0], self.spec.top_value)

    def best_action(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The oracle's action (n, d)."""
        raise NotImplementedError

    def mean_action(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The conditional mean of the data actions (n, d)."""
        raise NotImplementedError

    def reference_actions(self, observations: jnp.ndarray) -> jnp.ndarray:
        """Default: BEHAVIOUR_DRAWS behaviour draws (fixed keys), the dataset average, the oracle; (n, P, d)."""
        keys = jax.random.split(jax.random.PRNGKey(REFERENCE_SEED), BEHAVIOUR_DRAWS)
        draws = jax.vmap(lambda k: jnp.clip(self.sample_actions(k, observations)[0], -1.0, 1.0), out_axes=1)(keys)
        fixed = jnp.stack([self.mean_action(observations), self.best_action(observations)], axis=1)
        return jnp.concatenate([draws, fixed], axis=1)

    def reference_groups(self) -> dict[str, tuple[int, ...]]:
        """Default: {RANDOM_BEHAVIOUR: the draws, DATASET_AVERAGE, ORACLE} (see reference_actions)."""
        return {RANDOM_BEHAVIOUR: tuple(range(BEHAVIOUR_DRAWS)), DATASET_AVERAGE: (BEHAVIOUR_DRAWS,),
                ORACLE: (BEHAVIOUR_DRAWS + 1,)}

    def sample(self, key: jax.Array, n: int) -> dict[str, jnp.ndarray]:
        """n transitions: uniform states, behaviour actions clipped to [-1, 1], reward = true value,
        horizon 1 (masks 0, next observation = observation), plus the family's extra columns."""
        observations = uniform_states(jax.random.split(key, 3)[0], n, self.spec.obs_dim)
        actions, extra = self.sample_actions(key, observations)
        actions = jnp.clip(actions, -1.0, 1.0)
        return dict(observations=observations, actions=actions, rewards=self.true_value(observations, actions),
                    masks=jnp.zeros(n), next_observations=observations, **extra)

    def score(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """Mean true value of the actions over the states relative to the best supported action's (1.0 = best)."""
        return jnp.mean(self.true_value(observations, actions)) / jnp.mean(self.best_value(observations))


def one_step_evaluator(spec: Any, geometry: OneStepGeometry) -> Evaluator:
    """The task's `evaluate`: OneStepGeometry.score on `spec.eval_states` fresh states drawn from (spec.seed, seed),
    and each state as a one-step episode under VISITED (its reward the true value: the Monte-Carlo return)."""
    eval_key = jax.random.split(jax.random.PRNGKey(spec.seed), 3)[2]
    score_fn, value_fn = jax.jit(geometry.score), jax.jit(geometry.true_value)

    def evaluate(policy: Policy, num_episodes: int, seed: int) -> dict:
        """Score on `spec.eval_states` fresh states (each a one-step episode); num_episodes unused."""
        del num_episodes
        states = uniform_states(jax.random.fold_in(eval_key, seed), spec.eval_states, spec.obs_dim)
        actions = np.asarray(policy(np.asarray(states)), np.float32)
        n = spec.eval_states
        visited = Visited(observations=np.asarray(states, np.float32), actions=actions,
                          rewards=np.asarray(value_fn(states, actions), np.float64),
                          episodes=np.arange(n, dtype=np.int64), terminated=np.ones(n, bool))
        return {"score": float(score_fn(states, jnp.asarray(actions))), VISITED: visited}

    return evaluate


def reference_levels(spec: Any, make_geometry: Callable[[Any], OneStepGeometry]) -> dict[str, float]:
    """{level name: score} of the reference policies under the task's evaluate on REFERENCE_SEED's states (cached)."""
    return dict(_reference_levels(spec, make_geometry))


@functools.cache
def _reference_levels(spec: Any, make_geometry: Callable[[Any], OneStepGeometry]) -> tuple[tuple[str, float], ...]:
    geometry, evaluate = _compiled(spec, make_geometry)[0], _evaluator(spec, make_geometry)
    actions = KeptProgram("reference_actions", geometry_key(spec, make_geometry),  # every policy's: (n, P, d)
                          lambda _: geometry.reference_actions)
    groups = geometry.reference_groups()
    columns = sorted({i for group in groups.values() for i in group})
    scores = {i: evaluate(lambda states, i=i: np.asarray(actions(states))[:, i], 1, REFERENCE_SEED)["score"]
              for i in columns}
    return tuple((name, round(float(np.mean([scores[i] for i in group])), 6))  # (float32 noise off)
                 for name, group in groups.items())


class LazyLevels(Mapping):
    """A task's reference levels, computed by `compute()` on first access (training never needs them)."""

    def __init__(self, compute: Callable[[], dict[str, float]]):
        self.compute = compute

    @functools.cached_property
    def _levels(self) -> dict[str, float]:
        return self.compute()

    def __getitem__(self, name: str) -> float:
        return self._levels[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._levels)

    def __len__(self) -> int:
        return len(self._levels)


def one_step_task(name: str, spec: Any, make_geometry: Callable[[Any], OneStepGeometry]) -> Task:
    """A Task from a spec and its geometry: data drawn from spec.seed (float32; integer columns such as `modes`
    int32), the closed-form evaluate, lazy reference levels and the geometry's truth functions, jitted."""
    geometry, sample = _compiled(spec, make_geometry)
    data_key, val_key, _ = jax.random.split(jax.random.PRNGKey(spec.seed), 3)
    as_numpy = lambda arrays: {k: np.asarray(v, np.int32 if jnp.issubdtype(v.dtype, jnp.integer) else np.float32)
                               for k, v in arrays.items()}
    return Task(name=name, dataset=as_numpy(sample(data_key, spec.num_transitions)),
                validation=as_numpy(sample(val_key, spec.num_validation)),
                evaluate=_evaluator(spec, make_geometry),
                reference_levels=LazyLevels(functools.partial(reference_levels, spec, make_geometry)),
                true_value=jax.jit(geometry.true_value), best_value=jax.jit(geometry.best_value),
                behavior_log_density=jax.jit(geometry.behavior_log_density),
                mode_centers=None if geometry.mode_centers is None else jax.jit(geometry.mode_centers),
                truth_key=geometry_key(spec, make_geometry))


@functools.cache
def _evaluator(spec: Any, make_geometry: Callable[[Any], OneStepGeometry]) -> Evaluator:
    """The task's evaluate, one per process and spec: the reference levels and the runs share its programs."""
    return one_step_evaluator(spec, _compiled(spec, make_geometry)[0])


@functools.cache
def _compiled(spec: Any, make_geometry: Callable[[Any], OneStepGeometry]) -> tuple[OneStepGeometry, Callable]:
    """The geometry of a spec and its `sample` (key, n), each n's program kept across processes."""
    geometry = make_geometry(spec)
    programs = functools.cache(lambda n: KeptProgram("task_sample", (geometry_key(spec, make_geometry), n),
                                                     lambda _: lambda key: geometry.sample(key, n)))
    return geometry, lambda key, n: programs(n)(key)


def geometry_key(spec: Any, make_geometry: Callable[[Any], OneStepGeometry]) -> str:
    """What fixes a geometry and its functions (a kept program's settings): its class and spec."""
    return f"{make_geometry.__module__}.{make_geometry.__qualname__} {spec!r}"
