"""How far deployed actions are from the data's support (host side, scipy KD-tree).

Distances are measured in the joint space of standardised (state, action) pairs, to the nearest
training pair. The yardstick is the same distance for held-out pairs (`support_dist_ref`): the
data's own nearest-neighbour scale. A deployed action is out of distribution (`ood_frac`) when
it is farther than the 95th percentile of the reference distances.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

OOD_PERCENTILE = 95.0


class SupportIndex:
    """A KD-tree over the training (state, action) pairs, standardised per dimension."""

    def __init__(self, dataset: dict[str, np.ndarray], validation: dict[str, np.ndarray] | None,
                 num_reference: int = 1024, seed: int = 0):
        joint = np.concatenate([dataset["observations"], dataset["actions"]], axis=1).astype(np.float64)
        self.mean = joint.mean(0)
        self.scale = np.maximum(joint.std(0), 1e-6)
        self.tree = cKDTree((joint - self.mean) / self.scale)
        rng = np.random.default_rng(seed)
        if validation is not None and len(validation["actions"]):
            rows = rng.choice(len(validation["actions"]), min(num_reference, len(validation["actions"])), replace=False)
            self.reference = self.distances(validation["observations"][rows], validation["actions"][rows])
        else:  # no held-out data: nearest *other* training pair of a training sample
            rows = rng.choice(len(joint), min(num_reference, len(joint)), replace=False)
            dists, _ = self.tree.query((joint[rows] - self.mean) / self.scale, k=2, workers=-1)
            self.reference = dists[:, 1]
        self.ood_threshold = float(np.percentile(self.reference, OOD_PERCENTILE))

    def distances(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Distance (n,) from each (state, action) pair (n, obs), (n, d) to the nearest training pair."""
        joint = np.concatenate([observations, actions], axis=1).astype(np.float64)
        dists, _ = self.tree.query((joint - self.mean) / self.scale, k=1, workers=-1)
        return dists
