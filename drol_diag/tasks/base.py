"""The Task interface: the dataset arrays a learner trains on, plus an optional way to score a policy.

The interface is deliberately small, so users can bring their own data:

    Task(name, dataset, validation=None, evaluate=None, reference_levels={})

- `dataset` and `validation`: dicts of float32 arrays with N rows each:
  observations (N, obs_dim), actions (N, action_dim) in [-1, 1], rewards (N,),
  masks (N,) (0 where the episode truly terminates, else 1), next_observations (N, obs_dim).
- `evaluate(policy, num_episodes, seed) -> {"score": float, ...}` where `policy` is a batched
  function from observations (n, obs_dim) to actions (n, action_dim).
- `reference_levels` (optional): {name: score} of fixed reference policies under `evaluate`, the
  levels a report draws beside the runs' scores (modes: a random supported mode per state, the
  dataset-average action, the oracle). A run scoring below the level named UNDERTRAINED_REFERENCE is
  undertrained, not a finding. Empty where a task knows none (every task kind but `modes` for now).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]
Evaluator = Callable[[Policy, int, int], dict]
DATASET_KEYS = ("observations", "actions", "rewards", "masks", "next_observations")
UNDERTRAINED_REFERENCE = "random supported mode"  # the reference level below which a run is undertrained


@dataclass(frozen=True)
class Task:
    """A dataset (dict of arrays, see module docstring) and an optional evaluator."""

    name: str
    dataset: dict[str, np.ndarray] = field(repr=False)
    validation: dict[str, np.ndarray] | None = field(default=None, repr=False)
    evaluate: Evaluator | None = field(default=None, repr=False)
    reference_levels: Mapping[str, float] = field(default_factory=dict, repr=False)  # name -> score (see above)

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
