"""The recorder the training driver calls at every log interval: probe diagnostics for all seeds.

Device part: `probe_diagnostics` (FQL: `fql_probe_diagnostics`) vmapped over seeds and jitted.
Host part: ownership history (flips, returns, ARI; not for FQL, which has no owners) and support
distances (exact nearest neighbours, diagnostics.support).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from diagnostics.probes import (
    DEPLOY_STREAM,
    QUANTILES,
    ProbeSet,
    draw_probe_set,
    fql_probe_diagnostics,
    probe_diagnostics,
)
from diagnostics.quantities import QUANTITIES
from diagnostics.stability import OwnershipTracker
from diagnostics.support import SupportIndex
from drol.fql import FQLLearner
from drol.learner import Learner, TrainState, seed_key
from drol_diag.settings.options import DEFAULT_PROBES
from drol_diag.tasks import Task


class ProbeRecorder:
    """Probe sets, support index and ownership history of one run (all seeds)."""

    def __init__(self, learner: Learner | FQLLearner, task: Task, dataset: dict[str, jnp.ndarray], seeds: list[int],
                 num_probes: int = DEFAULT_PROBES):
        self.learner, self.seeds = learner, jnp.asarray(seeds, jnp.int32)
        k = learner.config.num_candidates
        self.probes: ProbeSet = jax.jit(jax.vmap(lambda s: draw_probe_set(dataset, s, num_probes, k)))(self.seeds)
        self.probe_observations = np.asarray(self.probes.observations)  # (S, M, obs)
        self.support = SupportIndex(task.dataset, task.validation, num_reference=num_probes)
        self.routed = learner.config.method == "drol"  # FQL has no candidates: no ownership quantities
        self.tracker = OwnershipTracker(len(seeds), self.probes.indices.shape[1], k) if self.routed else None
        diagnose = probe_diagnostics if self.routed else fql_probe_diagnostics
        self._diagnose = jax.jit(jax.vmap(lambda state, probes, key: diagnose(learner, state, probes, key)))

    def static_variables(self) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """Variables fixed for the whole run: the probe transitions and the support yardstick."""
        m = self.probes.indices.shape[1]
        candidates = {"candidate": (("candidate",), np.arange(self.learner.config.num_candidates)),
                      "quantile": (("quantile",), np.asarray(QUANTILES))} if self.routed else {}
        return {"probe_index": (("seed", "probe"), np.asarray(self.probes.indices)),
                "probe": (("probe",), np.arange(m)), **candidates,
                "layer": (("layer",), np.arange(len(self.learner.config.actor_hidden) + 1)),
                "support_dist_ref": (QUANTITIES["support_dist_ref"].dims, self.support.reference),
                "ood_threshold": (QUANTITIES["ood_threshold"].dims, np.asarray(self.support.ood_threshold))}

    def replay(self, winners: np.ndarray, nearests: np.ndarray) -> None:
        """Resume: feed the logged winners and nearest candidates (S, T, M) back into the history."""
        for t in range(winners.shape[1]):
            self.tracker.update(winners[:, t], nearests[:, t])

    def row(self, states: TrainState, step: int) -> dict[str, np.ndarray]:
        """Every diagnostic quantity at `step`, as {name: array (S, ...)}."""
        keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.fold_in(seed_key(s), DEPLOY_STREAM), step))(self.seeds)
        values = jax.tree.map(np.asarray, self._diagnose(states, self.probes, keys))
        deployed = values.pop("deployed")  # (S, M, d)
        history = self.tracker.update(values["winner"], values["nearest"]) if self.routed else {}
        seeds, probes, _ = deployed.shape
        support_dist = self.support.distances(self.probe_observations.reshape(seeds * probes, -1),
                                              deployed.reshape(seeds * probes, -1)).reshape(seeds, probes)
        return {**values, **history, "support_dist": support_dist, "support_dist_mean": support_dist.mean(1),
                "ood_frac": (support_dist > self.support.ood_threshold).mean(1)}
