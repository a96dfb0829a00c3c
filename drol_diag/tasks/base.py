"""The Task interface: the dataset arrays a learner trains on, plus an optional way to score a policy
(docs/tasks-and-truth.md).

- `dataset` and `validation`: dicts of float32 arrays with N rows each: observations (N, obs_dim),
  actions (N, action_dim) in [-1, 1], rewards (N,), masks (N,) (0 where the episode truly terminates),
  next_observations (N, obs_dim).
- `evaluate(policy, num_episodes, seed) -> {"score": float, ...}`, `policy` mapping observations
  (n, obs_dim) to actions (n, action_dim); an evaluator that also returns every step its episodes took
  (`Visited`, under VISITED) lets the run hold its critic against the Monte-Carlo returns (diagnostics.montecarlo).
- `reference_levels`: {name: score} of fixed reference policies under `evaluate`, drawn beside the runs'
  scores; a run below the UNDERTRAINED_REFERENCES level is undertrained, not a finding.

Ground truth (None where unknown): pure jax.numpy functions, jit-safe, accepting numpy input:
- `true_value(observations (N, obs_dim), actions (N, action_dim)) -> (N,)`: the expected return of the
  action in the state, following the behaviour policy after;
- `best_value(observations (N, obs_dim)) -> (N,)`: the oracle's value per state, the best supported action's
  true value;
- `behavior_log_density(observations, actions) -> (N,)`: the behaviour policy's log-density (-inf off support);
- `mode_centers(observations) -> (N, M, action_dim)`: where the data form M discrete modes per state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]
TruthFunction = Callable[[Any, Any], Any]  # (observations (N, obs_dim), actions (N, d)) -> (N,); jnp, jit-safe
StateValue = Callable[[Any], Any]  # observations (N, obs_dim) -> (N,); jnp, jit-safe
ModeCenters = Callable[[Any], Any]  # observations (N, obs_dim) -> (N, M, d); jnp, jit-safe
# the optional ground-truth functions
TRUTH_FIELDS = ("true_value", "best_value", "behavior_log_density", "mode_centers")
Evaluator = Callable[[Policy, int, int], dict]
VISITED = "visited"  # the key of an evaluation's Visited record in what `evaluate` returns
DATASET_KEYS = ("observations", "actions", "rewards", "masks", "next_observations")
UNDERTRAINED_REFERENCE = "random supported mode"  # modes: a random one of the supported modes per state
# A policy playing a supported action at random (modes: a random mode; arc, cliff: a fresh behaviour draw)
UNDERTRAINED_REFERENCES = (UNDERTRAINED_REFERENCE, "random behaviour action")


def undertrained_level(levels: Mapping[str, float]) -> tuple[str, float] | None:
    """(name, score) of the level in `levels` below which a run is undertrained; None where there is none."""
    return next(((name, float(levels[name])) for name in UNDERTRAINED_REFERENCES if name in levels), None)


@dataclass(frozen=True)
class Task:
    """A dataset (dict of arrays, see module docstring), an optional evaluator and optional ground truth."""

    name: str
    dataset: dict[str, np.ndarray] = field(repr=False)
    validation: dict[str, np.ndarray] | None = field(default=None, repr=False)
    evaluate: Evaluator | None = field(default=None, repr=False)
    reference_levels: Mapping[str, float] = field(default_factory=dict, repr=False)  # name -> score (see above)
    true_value: TruthFunction | None = field(default=None, repr=False)  # expected return of (s, a) (see above)
    best_value: StateValue | None = field(default=None, repr=False)  # the oracle's value per state (see above)
    behavior_log_density: TruthFunction | None = field(default=None, repr=False)  # log pi_beta(a | s) (see above)
    mode_centers: ModeCenters | None = field(default=None, repr=False)  # per-state mode centres (see above)
    truth_key: str | None = field(default=None, repr=False)  # what fixes the truth functions (drol_diag.programs)

    @property
    def obs_dim(self) -> int:
        return int(self.dataset["observations"].shape[-1])

    @property
    def action_dim(self) -> int:
        return int(self.dataset["actions"].shape[-1])


@dataclass(frozen=True, eq=False)
class Visited:
    """Every step one evaluation's episodes took, M in all, each episode's steps contiguous and in order; equal to
    another where every array is."""

    observations: np.ndarray  # (M, obs_dim) float32: the state the step acted in
    actions: np.ndarray  # (M, action_dim) float32: the action the environment got (clipped to its bounds)
    rewards: np.ndarray  # (M,) float64: the step's reward in the dataset's convention (the critic's)
    episodes: np.ndarray  # (M,) int64: the step's episode
    terminated: np.ndarray  # (M,) bool: the step ended its episode by a true termination (masks 0), not a time limit

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Visited) and all(
            np.array_equal(getattr(self, name), getattr(other, name)) for name in self.__dataclass_fields__)


def validate_dataset(dataset: dict[str, np.ndarray], what: str = "dataset") -> None:
    """Raise ValueError (one line: what is wrong, what is valid) for a malformed dataset."""
    missing = [k for k in DATASET_KEYS if k not in dataset]
    if missing:
        raise ValueError(f"{what} lacks keys {', '.join(missing)}; a dataset needs {', '.join(DATASET_KEYS)}")
    n = len(dataset["actions"])
    if n == 0:
        raise ValueError(f"{what} has no transitions")
    for key in DATASET_KEYS:
        array = np.asarray(dataset[key])
        if len(array) != n:
            raise ValueError(f"{what}: {key} has {len(array)} rows but actions has {n}; all keys need the same rows")
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{what}: {key} has dtype {array.dtype}; numeric arrays are required")
        bad = ~np.isfinite(array)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise ValueError(f"{what}: {key} contains NaN or inf (first at row {row}); all values must be finite")
    for key, ndim in (("observations", 2), ("actions", 2), ("next_observations", 2), ("rewards", 1), ("masks", 1)):
        if np.ndim(dataset[key]) != ndim:
            raise ValueError(f"{what}: {key} has shape {np.shape(dataset[key])}; expected {ndim}-D")
    if dataset["observations"].shape[1] != dataset["next_observations"].shape[1]:
        raise ValueError(f"{what}: observations and next_observations differ in width")
