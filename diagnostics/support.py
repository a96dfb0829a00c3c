"""How far deployed actions are from the data's support: exact nearest neighbours in the standardised joint
(state, action) space, brute force as chunked matmuls on the device (a KD-tree degenerates in 33 dims:
docs/diagnostics.md, "Cost"). Yardsticks: held-out pairs' own distances (`support_dist_ref`, its 95th percentile
the out-of-support threshold) and `data_action_spread`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

OOD_PERCENTILE = 95.0
# Training pairs per distance chunk: on the CPU a (queries, chunk) block that stays in cache is fastest (256: 4.5x
# faster than 4096 at 20k x 4-D, 1.4x at 200k x 33-D, measured on 2 cores); on an accelerator, large blocks.
CPU_CHUNK_ROWS, ACCELERATOR_CHUNK_ROWS = 256, 4096


def chunk_rows() -> int:
    """Training pairs per distance chunk on JAX's default backend."""
    return CPU_CHUNK_ROWS if jax.default_backend() == "cpu" else ACCELERATOR_CHUNK_ROWS


@jax.jit
def _nearest_index(queries: jnp.ndarray, points: jnp.ndarray, sq_norms: jnp.ndarray,
                   exclude: jnp.ndarray) -> jnp.ndarray:
    """Global row index (n,) of the nearest of points (C, R, D) (padding rows have sq_norms inf) to each
    query (n, D), skipping the global row index `exclude` (n,) of each query (-1: none); the first of ties."""
    rows = points.shape[1]
    query_sq = jnp.sum(jnp.square(queries), -1)
    row_index = jnp.arange(rows)[None, :]

    def scan_chunk(carry, chunk):
        best_d2, best_index = carry
        chunk_points, chunk_sq, offset = chunk
        d2 = query_sq[:, None] - 2.0 * queries @ chunk_points.T + chunk_sq[None, :]  # (n, R)
        d2 = jnp.where(offset + row_index == exclude[:, None], jnp.inf, d2)
        # min, then the first row reaching it: two plain reductions (argmin's value-index reduce is 3x slower on CPU)
        local_d2 = jnp.min(d2, axis=1)
        local = jnp.min(jnp.where(d2 == local_d2[:, None], row_index, rows), axis=1)
        better = local_d2 < best_d2
        return (jnp.where(better, local_d2, best_d2), jnp.where(better, offset + local, best_index)), None

    offsets = jnp.arange(points.shape[0]) * rows
    init = (jnp.full(queries.shape[:1], jnp.inf), jnp.zeros(queries.shape[:1], jnp.int32))
    (_, best_index), _ = jax.lax.scan(scan_chunk, init, (points, sq_norms, offsets))
    return best_index


@jax.jit
def _nearest(queries: jnp.ndarray, points: jnp.ndarray, sq_norms: jnp.ndarray, exclude: jnp.ndarray) -> jnp.ndarray:
    """Distances (n,) from queries (n, D) to the nearest of points (C, R, D) (see _nearest_index)."""
    nearest = points.reshape(-1, points.shape[-1])[_nearest_index(queries, points, sq_norms, exclude)]
    return jnp.sqrt(jnp.sum(jnp.square(queries - nearest), -1))


def data_action_spread(index: SupportIndex, observations: np.ndarray, actions: np.ndarray,
                       rows: np.ndarray) -> np.ndarray:
    """The yardstick of winner_data_dist: for each training row in `rows` (n,), the RMS-per-dimension distance (n,)
    from its action to that of the nearest *other* training pair of `index` (built on the training data (N, obs),
    (N, d)). The nearest pair, not state: in multimodal data that would measure the modes' separation."""
    rows = np.asarray(rows, np.int64)
    nearest = index.nearest_rows(np.asarray(observations)[rows], np.asarray(actions)[rows], exclude=rows)
    actions = np.asarray(actions, np.float64)
    return np.sqrt(np.mean(np.square(actions[rows] - actions[nearest]), -1))


class SupportIndex:
    """The training (state, action) pairs, standardised per dimension, on the device."""

    def __init__(self, dataset: dict[str, np.ndarray], validation: dict[str, np.ndarray] | None,
                 num_reference: int = 1024, seed: int = 0):
        joint = np.concatenate([dataset["observations"], dataset["actions"]], axis=1).astype(np.float64)
        self.mean = joint.mean(0)
        self.scale = np.maximum(joint.std(0), 1e-6)
        standardised = ((joint - self.mean) / self.scale).astype(np.float32)
        (n, dims), rows = standardised.shape, chunk_rows()
        chunks = -(-n // rows)
        padded = np.zeros((chunks * rows, dims), np.float32)
        padded[:n] = standardised
        sq_norms = np.full(chunks * rows, np.inf, np.float32)
        sq_norms[:n] = np.sum(np.square(standardised), -1)
        self.points = jnp.asarray(padded.reshape(chunks, rows, dims))
        self.sq_norms = jnp.asarray(sq_norms.reshape(chunks, rows))

        rng = np.random.default_rng(seed)
        if validation is not None and len(validation["actions"]):
            rows = rng.choice(len(validation["actions"]), min(num_reference, len(validation["actions"])), replace=False)
            self.reference = self.distances(validation["observations"][rows], validation["actions"][rows])
        else:  # no held-out data: the nearest *other* training pair of a training sample
            rows = rng.choice(n, min(num_reference, n), replace=False)
            self.reference = self.distances(dataset["observations"][rows], dataset["actions"][rows], exclude=rows)
        self.ood_threshold = float(np.percentile(self.reference, OOD_PERCENTILE))

    def nearest_rows(self, observations: np.ndarray, actions: np.ndarray,
                     exclude: np.ndarray | None = None) -> np.ndarray:
        """Row (n,) of the nearest training pair to each pair (n, obs), (n, d) (skipping training row
        exclude[i] for query i, when given)."""
        return np.asarray(_nearest_index(*self._search(observations, actions, exclude)))

    def distances(self, observations: np.ndarray, actions: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """Distance (n,) from each pair (n, obs), (n, d) to the nearest training pair
        (skipping training row exclude[i] for query i, when given)."""
        return np.asarray(_nearest(*self._search(observations, actions, exclude)), np.float64)

    def _search(self, observations: np.ndarray, actions: np.ndarray, exclude: np.ndarray | None) -> tuple:
        """The arguments of _nearest_index for pairs (n, obs), (n, d): standardised queries, points, skips."""
        joint = np.concatenate([observations, actions], axis=1).astype(np.float64)
        queries = jnp.asarray(((joint - self.mean) / self.scale).astype(np.float32))
        skip = jnp.asarray(np.full(len(joint), -1) if exclude is None else exclude, jnp.int32)
        return queries, self.points, self.sq_norms, skip
