"""The Task interface: the dataset arrays a learner trains on, plus an optional way to score a policy.

The interface is deliberately small, so users can bring their own data:

    Task(name, dataset, validation=None, evaluate=None, reference_levels={},
         true_value=None, behavior_log_density=None, mode_centers=None)

- `dataset` and `validation`: dicts of float32 arrays with N rows each:
  observations (N, obs_dim), actions (N, action_dim) in [-1, 1], rewards (N,),
  masks (N,) (0 where the episode truly terminates, else 1), next_observations (N, obs_dim).
- `evaluate(policy, num_episodes, seed) -> {"score": float, ...}` where `policy` is a batched
  function from observations (n, obs_dim) to actions (n, action_dim).
- `reference_levels` (optional): {name: score} of fixed reference policies under `evaluate`, the
  levels a report draws beside the runs' scores (modes: a random supported mode per state, the
  dataset-average action, the oracle). A run scoring below the level named UNDERTRAINED_REFERENCE is
  undertrained, not a finding. Empty where a task knows none (only the embedded one-step tasks know theirs).

Ground truth (optional; None where a task does not know it). Pure jax.numpy functions of states
`observations (N, obs_dim)` and actions `actions (N, action_dim)`, usable inside jax.jit and on numpy
input, returning jnp arrays:
- `true_value(observations, actions) -> (N,)`: the expected return of taking the action in the state
  and following the behaviour policy after (for a one-step task, the expected reward);
- `behavior_log_density(observations, actions) -> (N,)`: the log-density of the behaviour policy that
  made the data at the action (-inf where it has no support, e.g. beyond the `cliff` tasks' edge);
- `mode_centers(observations) -> (N, M, action_dim)`: for tasks whose data actions form M discrete
  modes per state (`modes`), the centres of the modes, so diagnostics can count the modes covered.
The embedded tasks (`modes`, `arc`, `cliff`) give all they know; a user's Task, or a
package.module:factory task (drol_diag.tasks.custom), may supply the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]
TruthFunction = Callable[[Any, Any], Any]  # (observations (N, obs_dim), actions (N, d)) -> (N,); jnp, jit-safe
ModeCenters = Callable[[Any], Any]  # observations (N, obs_dim) -> (N, M, d); jnp, jit-safe
TRUTH_FIELDS = ("true_value", "behavior_log_density", "mode_centers")  # the optional ground-truth functions
Evaluator = Callable[[Policy, int, int], dict]
DATASET_KEYS = ("observations", "actions", "rewards", "masks", "next_observations")
UNDERTRAINED_REFERENCE = "random supported mode"  # modes: a random one of the supported modes per state
# The reference levels of a policy that plays a supported action at random (modes: a random mode; arc and
# cliff: a fresh behaviour action): a run scoring below the task's one is undertrained, not a finding.
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
    behavior_log_density: TruthFunction | None = field(default=None, repr=False)  # log pi_beta(a | s) (see above)
    mode_centers: ModeCenters | None = field(default=None, repr=False)  # per-state mode centres (see above)

    @property
    def obs_dim(self) -> int:
        return int(self.dataset["observations"].shape[-1])

    @property
    def action_dim(self) -> int:
        return int(self.dataset["actions"].shape[-1])


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
