"""The recorder the training driver calls at every log row: probe diagnostics for all seeds (device: probes,
vmapped over seeds and jitted) with the ownership history, support distances and yardsticks (host), and, for a
task with ground truth, truth_diagnostics (out-of-support threshold: the held-out actions' 5% log-density quantile),
and with a learned behaviour density (diagnostics.density) the same rule with the estimate.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from diagnostics.density import BehaviourDensity
from diagnostics.probes import (
    DEPLOY_STREAM,
    LOG_DENSITY_FLOOR,
    QUANTILES,
    ProbeSet,
    coverage_diagnostics,
    draw_probe_set,
    fql_probe_diagnostics,
    probe_diagnostics,
    truth_diagnostics,
)
from diagnostics.quantities import QUANTITIES
from diagnostics.stability import OwnershipTracker
from diagnostics.support import SupportIndex, data_action_spread
from drol.fql import FQLLearner
from drol.learner import Learner, TrainState, seed_key
from drol_diag.programs import KeptProgram
from drol_diag.settings.options import DEFAULT_PROBES
from drol_diag.tasks import Task

MODE_NOISE_PERCENTILE = 95.0  # a mode is covered when a candidate is as near its centre as this share of its data
TRUE_OOD_PERCENTILE = 5.0  # true_ood_frac: deployed actions less likely under the behaviour than this share of data
HELD_OUT_ROWS = 4096  # held-out data rows (training rows where none) for the mode noise and true_ood_threshold


def held_out_rows(task: Task) -> dict[str, np.ndarray]:
    """The first HELD_OUT_ROWS rows of the task's held-out data (its training data where it has none)."""
    data = task.validation if task.validation is not None and len(task.validation["actions"]) else task.dataset
    n = min(len(data["actions"]), HELD_OUT_ROWS)
    return {"observations": data["observations"][:n], "actions": data["actions"][:n]}


@functools.lru_cache(maxsize=64)
def probe_set_program(num_probes: int, num_candidates: int):
    """The jitted probe sets of several seeds: (dataset, seeds (S,)) -> ProbeSet with a leading seed axis."""
    return KeptProgram("probe_set", (num_probes, num_candidates), lambda _: jax.vmap(
        lambda dataset, seed: draw_probe_set(dataset, seed, num_probes, num_candidates), in_axes=(None, 0)))


@functools.lru_cache(maxsize=64)
def diagnose_program(learner: Learner | FQLLearner):
    """The jitted probe diagnostics of a learner, vmapped over seeds: (states, probes, keys) -> {name: (S, ...)};
    one per learner settings in a process (a frozen dataclass)."""
    diagnose = probe_diagnostics if learner.config.method == "drol" else fql_probe_diagnostics
    return KeptProgram("diagnose", learner, lambda learner: jax.vmap(
        lambda state, probes, key: diagnose(learner, state, probes, key)))


@functools.lru_cache(maxsize=64)
def coverage_program(learner: Learner):
    """The jitted coverage_diagnostics of a learner, vmapped over seeds: (states, probes, centres (S, M, Mo, d) or
    None, action_scale (d,), reach, noise_scale) -> {name: (S,)}; one per learner in a process."""
    return KeptProgram("coverage", learner, lambda learner: jax.vmap(
        lambda state, probes, centres, action_scale, reach, noise: coverage_diagnostics(
            learner, state, probes, action_scale, reach, centres, noise), in_axes=(0, 0, 0, None, None, None)))


@functools.lru_cache(maxsize=16)
def truth_program(true_value, behavior_log_density, best_value=None, truth_key: str | None = None) -> KeptProgram:
    """The compiled truth_diagnostics against a task's truth functions, vmapped over seeds: (observations,
    data_actions, deployed, winner_actions, q_deployed, q_winner, ood_log_density, candidates) -> {name: (S,)};
    kept across processes under the task's truth_key (None: traced in each)."""
    return KeptProgram("truth", truth_key, lambda _: jax.vmap(
        lambda obs, actions, deployed, winners, q_deployed, q_winner, threshold, candidates: truth_diagnostics(
            obs, actions, deployed, winners, q_deployed, q_winner, true_value, behavior_log_density, threshold,
            candidates, best_value), in_axes=(0, 0, 0, 0, 0, 0, None, 0)))


@jax.jit
def deploy_keys(seeds: jnp.ndarray, step: int | jnp.ndarray) -> jax.Array:
    """The keys of the deployed actions' prior samples at `step`, one per seed (S,) -> (S, 2)."""
    return jax.vmap(lambda s: jax.random.fold_in(jax.random.fold_in(seed_key(s), DEPLOY_STREAM), step))(seeds)


class ProbeRecorder:
    """Probe sets, support index and ownership history of one run (all seeds)."""

    def __init__(self, learner: Learner | FQLLearner, task: Task, dataset: dict[str, jnp.ndarray], seeds: list[int],
                 num_probes: int = DEFAULT_PROBES, density: BehaviourDensity | None = None):
        self.learner, self.seeds = learner, jnp.asarray(seeds, jnp.int32)
        k = learner.config.num_candidates
        self.probes: ProbeSet = probe_set_program(num_probes, k)(dataset, self.seeds)
        self.probe_observations = np.asarray(self.probes.observations)  # (S, M, obs)
        self.support = SupportIndex(task.dataset, task.validation, num_reference=num_probes)
        self.routed = learner.config.method == "drol"  # FQL has no candidates: no ownership quantities
        self.tracker = OwnershipTracker(len(seeds), self.probes.indices.shape[1], k) if self.routed else None
        self._diagnose = diagnose_program(learner)
        if self.routed:
            self._yardsticks(task, dataset)
        self._truth_setup(task)
        self._density_setup(task, density)

    def _density_setup(self, task: Task, density: BehaviourDensity | None) -> None:
        """The learned behaviour density's yardsticks: its held-out 5% quantile and the probes' data actions."""
        self.density, self.density_ood_threshold = density, None
        if density is None:
            return
        data = held_out_rows(task)
        self.density_ood_threshold = float(np.percentile(density.log_prob(data["observations"], data["actions"]),
                                                         TRUE_OOD_PERCENTILE))
        self._density_data = self._density_logp(np.asarray(self.probes.actions)).mean(1)  # (S,)

    def _density_logp(self, actions: np.ndarray, repeat: int = 1) -> np.ndarray:
        """max(estimated log-density, LOG_DENSITY_FLOOR) (S, repeat M) of actions (S, repeat M, d) at the probe
        states (repeated `repeat` times along the probe axis)."""
        seeds, rows, _ = actions.shape
        observations = np.concatenate([self.probe_observations] * repeat, axis=1).reshape(seeds * rows, -1)
        logp = self.density.log_prob(observations, actions.reshape(seeds * rows, -1))
        return np.maximum(logp, LOG_DENSITY_FLOOR).reshape(seeds, rows)

    def _density_row(self, deployed: np.ndarray, winner_actions: np.ndarray | None, action_cos: np.ndarray | None,
                     true_action_cos: np.ndarray | None) -> dict[str, np.ndarray]:
        """The density quantities of a row: deployed (S, M, d), winner_actions (S, M, d) or None (FQL), the learned
        and the true conflict cosines (S, M) or None."""
        both = deployed if winner_actions is None else np.concatenate([deployed, winner_actions], axis=1)
        logp = self._density_logp(both, repeat=both.shape[1] // deployed.shape[1])  # one pass over both: (S, M or 2M)
        deployed_logp, winner_logp = logp[:, :deployed.shape[1]], logp[:, deployed.shape[1]:]
        row = {"density_logp": deployed_logp, "density_logp_deployed": deployed_logp.mean(1),
               "density_logp_data": self._density_data,
               "density_ood_frac": (deployed_logp < self.density_ood_threshold).mean(1)}
        if winner_actions is not None:
            in_support = winner_logp >= self.density_ood_threshold  # (S, M)
            share = lambda conflict: np.where(in_support.any(1), (conflict & in_support).sum(1)
                                              / np.maximum(in_support.sum(1), 1), np.nan)
            row.update(density_logp_winner=winner_logp.mean(1), conflict_frac_in_support=share(action_cos < 0))
            if true_action_cos is not None:
                row["true_conflict_frac_in_support"] = share(true_action_cos < 0)
        return row

    def _truth_setup(self, task: Task) -> None:
        """The comparison with the task's ground truth, where it has some (else self._truth is None)."""
        value, density, best = task.true_value, task.behavior_log_density, task.best_value
        self.true_ood_threshold: float | None = None
        self._truth = None
        if value is None and density is None and best is None:
            return
        if density is not None:
            data = held_out_rows(task)
            logp = np.asarray(density(jnp.asarray(data["observations"]), jnp.asarray(data["actions"])), np.float64)
            self.true_ood_threshold = float(np.percentile(logp, TRUE_OOD_PERCENTILE))
        self._truth_threshold = jnp.float32(-np.inf if self.true_ood_threshold is None else self.true_ood_threshold)
        self._truth = truth_program(value, density, best, task.truth_key)

    def _yardsticks(self, task: Task, dataset: dict[str, jnp.ndarray]) -> None:
        """The scales the routing quantities are read against, and the coverage computation."""
        seeds, m = self.probes.indices.shape
        rows = np.asarray(self.probes.indices).reshape(-1)
        self.action_spread = data_action_spread(self.support, np.asarray(dataset["observations"]),
                                                np.asarray(dataset["actions"]), rows).reshape(seeds, m)  # (S, M)
        action_scale = jnp.asarray(self.support.scale[task.obs_dim:], jnp.float32)
        reach = self.support.ood_threshold
        mode_centers = task.mode_centers
        self.mode_noise_scale: float | None = None
        self.centres = None
        if mode_centers is not None:
            data = held_out_rows(task)
            data_centres = np.asarray(mode_centers(jnp.asarray(data["observations"])), np.float64)  # (n, Mo, d)
            to_centre = np.sqrt(np.mean(np.square(data["actions"][:, None] - data_centres), -1)).min(-1)
            self.mode_noise_scale = float(np.percentile(to_centre, MODE_NOISE_PERCENTILE))
            self.centres = jnp.asarray(mode_centers(jnp.asarray(self.probe_observations.reshape(seeds * m, -1))),
                                       jnp.float32).reshape(seeds, m, *data_centres.shape[1:])  # (S, M, Mo, d)
        self._cover_scales = (action_scale, jnp.float32(reach), jnp.float32(self.mode_noise_scale or 0.0))
        self._cover = coverage_program(self.learner)

    def static_variables(self) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """Variables fixed for the whole run: the probe transitions and the yardsticks."""
        m = self.probes.indices.shape[1]
        candidates = {"candidate": (("candidate",), np.arange(self.learner.config.num_candidates)),
                      "quantile": (("quantile",), np.asarray(QUANTILES))} if self.routed else {}
        return {"probe_index": (("seed", "probe"), np.asarray(self.probes.indices)),
                "probe": (("probe",), np.arange(m)), **candidates,
                "layer": (("layer",), np.arange(len(self.learner.config.actor_hidden) + 1)),
                "support_dist_ref": (QUANTITIES["support_dist_ref"].dims, self.support.reference),
                "ood_threshold": (QUANTITIES["ood_threshold"].dims, np.asarray(self.support.ood_threshold)),
                **(self._static_yardsticks() if self.routed else {}),
                **({} if self.density_ood_threshold is None else {
                    "density_ood_threshold": (QUANTITIES["density_ood_threshold"].dims,
                                              np.asarray(self.density_ood_threshold))}),
                **({} if self.true_ood_threshold is None else {
                    "true_ood_threshold": (QUANTITIES["true_ood_threshold"].dims,
                                           np.asarray(self.true_ood_threshold))})}

    def _static_yardsticks(self) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        modes = {} if self.centres is None else {
            "num_modes": (QUANTITIES["num_modes"].dims, np.asarray(self.centres.shape[2])),
            "mode_noise_scale": (QUANTITIES["mode_noise_scale"].dims, np.asarray(self.mode_noise_scale))}
        return {"data_action_spread": (QUANTITIES["data_action_spread"].dims, self.action_spread), **modes}

    def replay(self, winners: np.ndarray, nearests: np.ndarray) -> None:
        """Resume: feed the logged winners and nearest candidates (S, T, M) back into the history."""
        for t in range(winners.shape[1]):
            self.tracker.update(winners[:, t], nearests[:, t])

    def row(self, states: TrainState, step: int) -> dict[str, np.ndarray]:
        """Every diagnostic quantity at `step`, as {name: array (S, ...)}."""
        keys = deploy_keys(self.seeds, step)
        diagnosed = self._diagnose(states, self.probes, keys)  # (every device program dispatched before any wait)
        covered = self._cover(states, self.probes, self.centres, *self._cover_scales) if self.routed else {}
        winner_actions = diagnosed["winner_actions"] if self.routed else None  # (S, M, d)
        truth = {} if self._truth is None else self._truth(
            self.probes.observations, self.probes.actions, diagnosed["deployed"], winner_actions,
            diagnosed["q_deployed"], diagnosed.get("q_winner"), self._truth_threshold,
            diagnosed["candidates"] if self.routed else None)
        values = jax.tree.map(np.asarray, {**diagnosed, **truth, **covered})
        deployed = values.pop("deployed")  # (S, M, d)
        winner_actions = values.pop("winner_actions") if self.routed else None
        values.pop("candidates", None)
        true_action_cos = values.pop("true_action_cos", None)
        if self.density is not None:
            values.update(self._density_row(deployed, winner_actions, values.get("action_cos"), true_action_cos))
        if self.routed:
            values.update(self.tracker.update(values["winner"], values["nearest"]))
        seeds, probes, _ = deployed.shape
        support_dist = self.support.distances(self.probe_observations.reshape(seeds * probes, -1),
                                              deployed.reshape(seeds * probes, -1)).reshape(seeds, probes)
        return {**values, "support_dist": support_dist, "support_dist_mean": support_dist.mean(1),
                "ood_frac": (support_dist > self.support.ood_threshold).mean(1)}
