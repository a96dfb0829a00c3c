"""Probe diagnostics: what routing does to a fixed set of M training transitions (pure JAX, one seed; vmap it).

Each probe has its own fixed bank of K latents (drol.prior.latent_bank, as static routing derives them), so a
change of winner between two rows means ownership really moved. History (diagnostics.stability) and support
distances (diagnostics.support) are computed on the host. Shapes: M probes, K candidates, d action dim, L layers.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from drol import fql
from drol.fql import FQLLearner, FQLState
from drol.learner import Learner, TrainState, act, assign, bank_key, refresh_routing, seed_key
from drol.losses import actor_loss, candidate_actions
from drol.prior import latent_bank
from drol.routing import route_nearest

PROBE_STREAM = 0x9B0BE  # probe indices: fold_in(seed_key(seed), PROBE_STREAM)
DEPLOY_STREAM = 0xDE9  # deployed-action samples at the probes: fold_in(seed_key(seed), DEPLOY_STREAM), step
# random owners (random-routing) and FQL's noises at the probes: fold_in(deploy key, ROUTE_STREAM)
ROUTE_STREAM = 0x7A1D
QUANTILES = (0.5, 0.9, 0.99)  # reported quantiles of winner_data_dist
# behavior_logp_* average max(log-density, LOG_DENSITY_FLOOR): beyond the cliff's edge the density is 0 (log -inf)
LOG_DENSITY_FLOOR = -50.0


class ProbeSet(NamedTuple):
    """A seed's probe set: indices (M,) into the training data, observations (M, obs),
    actions (M, d) as trained on, and the fixed latent banks (M, K, d)."""

    indices: jnp.ndarray
    observations: jnp.ndarray
    actions: jnp.ndarray
    latents: jnp.ndarray


def draw_probe_set(dataset: dict[str, jnp.ndarray], seed: int | jnp.ndarray, num_probes: int,
                   num_candidates: int) -> ProbeSet:
    """M transitions drawn without replacement from (seed) alone, with their latent banks: the same task and seed
    give the same probes whatever the ablation or K. `dataset`: the arrays trained on (driver.device_dataset)."""
    n = dataset["actions"].shape[0]
    indices = jax.random.choice(jax.random.fold_in(seed_key(seed), PROBE_STREAM), n, (min(num_probes, n),),
                                replace=False)
    actions = dataset["actions"][indices]
    latents = latent_bank(bank_key(seed), indices, num_candidates, actions.shape[-1])
    return ProbeSet(indices.astype(jnp.int32), dataset["observations"][indices], actions, latents)


def dense_layers(params: Mapping) -> list[Mapping]:
    """The Dense layers of a network's parameter tree in call order: every sub-tree holding a `kernel`,
    sorted by its module path with numbers compared as numbers (flax names them Dense_0, Dense_1, ...)."""
    found: list[tuple[tuple, Mapping]] = []

    def walk(tree: Mapping, path: tuple) -> None:
        if "kernel" in tree:
            found.append((path, tree))
            return
        for name, sub in tree.items():
            if isinstance(sub, Mapping):
                walk(sub, (*path, tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))))
    walk(params, ())
    return [layer for _, layer in sorted(found, key=lambda item: item[0])]


def _layer_sq_norms_and_dots(a: Mapping, b: Mapping) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Per Dense layer of the actor: |a|^2, |b|^2 and a.b over its kernel and bias; each (L,)."""
    flat = lambda tree: jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])
    rows = [(flat(x), flat(y)) for x, y in zip(dense_layers(a), dense_layers(b))]
    return (jnp.stack([x @ x for x, _ in rows]), jnp.stack([y @ y for _, y in rows]),
            jnp.stack([x @ y for x, y in rows]))


def gradient_conflict(bc_grad: dict, q_grad: dict, bc_coef: float) -> dict[str, jnp.ndarray]:
    """Do the unweighted BC term and L_q pull the actor's parameters the same way? grad_cos, grad_cos_layer (L,)
    and grad_norm_ratio = |bc_coef grad L_bc| / |grad L_q| (the cosines stay defined when a coefficient is 0)."""
    bc_sq, q_sq, dot = _layer_sq_norms_and_dots(bc_grad, q_grad)
    return {"grad_cos": jnp.sum(dot) / jnp.sqrt(jnp.sum(bc_sq) * jnp.sum(q_sq) + 1e-30),
            "grad_cos_layer": dot / jnp.sqrt(bc_sq * q_sq + 1e-30),
            "grad_norm_ratio": bc_coef * jnp.sqrt(jnp.sum(bc_sq)) / jnp.sqrt(jnp.sum(q_sq) + 1e-30)}


def action_conflict(ascent: jnp.ndarray, pull: jnp.ndarray) -> dict[str, jnp.ndarray]:
    """Cosine (M,) between the critic's ascent dQ/da and the imitation pull (towards the data or the
    teacher), both (M, d), and the fraction of probes where they disagree (cosine < 0)."""
    action_cos = jnp.sum(ascent * pull, -1) / jnp.sqrt(jnp.sum(ascent**2, -1) * jnp.sum(pull**2, -1) + 1e-30)
    return {"action_cos": action_cos, "conflict_frac": jnp.mean(action_cos < 0)}


def probe_diagnostics(learner: Learner, state: TrainState, probes: ProbeSet,
                      deploy_key: jax.Array) -> dict[str, jnp.ndarray]:
    """Routing, distance, gradient and usage quantities of one DROL seed on its probe set; the owner of each probe
    is what the run's own routing (drol.learner.assign) decides on its bank. Returns (M,), (M, d), (M, K, d)
    (the candidates, for truth_diagnostics), (K,), (L,) or scalars by name."""
    config = learner.config
    actor, critic = learner.actor, learner.critic
    obs, actions, latents = probes.observations, probes.actions, probes.latents
    num_probes, num_candidates, action_dim = latents.shape

    candidates = candidate_actions(actor, state.actor_params, obs, latents)  # (M, K, d)
    nearest = route_nearest(candidates, actions)
    routed = assign(learner, refresh_routing(learner, state), probes.indices, obs, actions, latents,
                    jax.random.fold_in(deploy_key, ROUTE_STREAM))
    winner = routed.winners
    take = lambda per_candidate: jnp.take_along_axis(per_candidate, winner[:, None, None], axis=1)[:, 0]
    winner_actions = take(candidates)  # (M, d)
    winner_data_dist = jnp.sqrt(jnp.sum(jnp.square(winner_actions - actions), -1) / action_dim)  # RMS per dim

    # Usage of the K candidates.
    load = jnp.bincount(winner, length=num_candidates) / num_probes  # (K,)
    entropy = -jnp.sum(jnp.where(load > 0, load * jnp.log(jnp.where(load > 0, load, 1.0)), 0.0))
    load_entropy = entropy / jnp.log(num_candidates) if num_candidates > 1 else jnp.ones(())
    pairwise = jnp.sqrt(jnp.sum(jnp.square(candidates[:, :, None] - candidates[:, None]), -1) + 1e-20)  # (M, K, K)
    pairs = max(num_candidates * (num_candidates - 1), 1)
    candidate_spread = jnp.mean(jnp.sum(pairwise * (1 - jnp.eye(num_candidates)), axis=(1, 2)) / pairs)

    # Critic values (min over the ensemble, as the actor sees them).
    q_min = lambda a: jnp.min(critic.apply(state.critic_params, obs, a), axis=0)  # (M,)
    deployed = act(learner, state.actor_params, obs, deploy_key)  # (M, d), as at test time
    q_candidates = jax.vmap(q_min, in_axes=1, out_axes=1)(candidates)  # (M, K)

    # Gradients of the run's own actor terms (its routing's latents and weights) on the probes.
    loss_of = lambda bc_coef, q_coef: (lambda params: actor_loss(
        params, state.critic_params, obs, actions, routed.latents, routed.weights, actor=actor, critic=critic,
        config=dataclasses.replace(config, bc_coef=bc_coef, q_coef=q_coef))[0])
    gradients = gradient_conflict(jax.grad(loss_of(1.0, 0.0))(state.actor_params),
                                  jax.grad(loss_of(0.0, 1.0))(state.actor_params), config.bc_coef)
    # ... and in action space: towards the data action versus up the critic, at the winner.
    conflict = action_conflict(jax.grad(lambda a: jnp.sum(q_min(a)))(winner_actions), actions - winner_actions)

    return {
        "winner": winner, "nearest": nearest, "owner_mismatch": jnp.mean(winner != nearest),
        "winner_data_dist": winner_data_dist,
        "winner_data_dist_mean": jnp.mean(winner_data_dist),
        "winner_data_dist_quantiles": jnp.quantile(winner_data_dist, jnp.asarray(QUANTILES)),
        "load": load, "load_entropy": load_entropy, "dead_candidates": jnp.sum(load == 0).astype(jnp.int32),
        "candidate_spread": candidate_spread,
        "q_winner": jnp.mean(q_min(winner_actions)), "q_data": jnp.mean(q_min(actions)),
        "q_deployed": jnp.mean(q_min(deployed)), "q_best_candidate": jnp.mean(jnp.max(q_candidates, axis=1)),
        "deployed": deployed, "winner_actions": winner_actions, "candidates": candidates,
        **gradients, **conflict,
    }


def fql_probe_diagnostics(learner: FQLLearner, state: FQLState, probes: ProbeSet,
                          deploy_key: jax.Array) -> dict[str, jnp.ndarray]:
    """The quantities that apply to FQL's one-step actor (no candidates): the conflict of its distillation term
    (towards the flow's action for the same noise) with L_q, critic values and the deployed actions."""
    config = learner.config
    obs = probes.observations
    noises = jax.random.normal(jax.random.fold_in(deploy_key, ROUTE_STREAM), probes.actions.shape)
    teacher = fql.flow_actions(learner, state.flow_params, obs, noises)  # (M, d)
    loss_of = lambda alpha, q_coef: (lambda params: fql.actor_loss(
        params, state.critic_params, obs, noises, teacher, learner=learner, alpha=alpha, q_coef=q_coef)[0])
    gradients = gradient_conflict(jax.grad(loss_of(1.0, 0.0))(state.actor_params),
                                  jax.grad(loss_of(0.0, 1.0))(state.actor_params), config.alpha)
    one_step = jnp.clip(learner.actor.apply(state.actor_params, obs, noises), -1.0, 1.0)
    q_min = lambda a: jnp.min(learner.critic.apply(state.critic_params, obs, a), axis=0)  # (M,)
    conflict = action_conflict(jax.grad(lambda a: jnp.sum(q_min(a)))(one_step), teacher - one_step)
    deployed = learner.act(state.actor_params, obs, deploy_key)
    return {"q_data": jnp.mean(q_min(probes.actions)), "q_deployed": jnp.mean(q_min(deployed)),
            "deployed": deployed, **gradients, **conflict}


def coverage_diagnostics(learner: Learner, state: TrainState, probes: ProbeSet, action_scale: jnp.ndarray,
                         reach: float | jnp.ndarray, centres: jnp.ndarray | None = None,
                         noise_scale: float | jnp.ndarray = 0.0) -> dict[str, jnp.ndarray]:
    """Do the probe's K candidates cover the data? coverage: the fraction of probes whose data action some
    candidate reaches within `reach`, measured as support_dist measures (actions over `action_scale` (d,), the
    data's std). With mode centres (M, Mo, d): modes_covered, the modes with a candidate within `noise_scale`
    (RMS per action dim) of their centre, mean over probes."""
    candidates = candidate_actions(learner.actor, state.actor_params, probes.observations, probes.latents)
    gap = jnp.sqrt(jnp.sum(jnp.square((candidates - probes.actions[:, None]) / action_scale), -1))  # (M, K)
    result = {"coverage": jnp.mean(jnp.min(gap, axis=1) <= reach)}
    if centres is not None:
        to_centre = jnp.sqrt(jnp.mean(jnp.square(candidates[:, :, None] - centres[:, None]), -1))  # (M, K, Mo)
        result["modes_covered"] = jnp.mean(jnp.sum(jnp.any(to_centre <= noise_scale, axis=1), -1))
    return result


def truth_diagnostics(observations: jnp.ndarray, data_actions: jnp.ndarray, deployed: jnp.ndarray,
                      winner_actions: jnp.ndarray | None, q_deployed: jnp.ndarray, q_winner: jnp.ndarray | None,
                      true_value=None, behavior_log_density=None,
                      ood_log_density: float | jnp.ndarray = -jnp.inf, candidates: jnp.ndarray | None = None,
                      best_value=None) -> dict[str, jnp.ndarray]:
    """The probe quantities against the task's ground truth (drol_diag.tasks.base.Task), one seed (meanings:
    diagnostics.quantities). observations (M, obs); data_actions, deployed, winner_actions (M, d) (None for FQL);
    q_deployed, q_winner: scalars as probe_diagnostics logs them; candidates (M, K, d) (None for FQL).
    Returns scalars, and behavior_logp (M,)."""
    points = {"data": data_actions, "deployed": deployed}
    if winner_actions is not None:
        points["winner"] = winner_actions
    result: dict[str, jnp.ndarray] = {}
    if best_value is not None:
        result["true_value_oracle"] = jnp.mean(best_value(observations))
    if true_value is not None:
        for name, actions in points.items():
            result[f"true_value_{name}"] = jnp.mean(true_value(observations, actions))
        if candidates is not None:
            values = jax.vmap(lambda a: true_value(observations, a), in_axes=1, out_axes=1)(candidates)  # (M, K)
            result["true_value_best_candidate"] = jnp.mean(jnp.max(values, axis=1))
        result["critic_bias"] = q_deployed - result["true_value_deployed"]
        if winner_actions is not None:
            result["critic_bias_winner"] = q_winner - result["true_value_winner"]
            ascent = jax.grad(lambda a: jnp.sum(true_value(observations, a)))(winner_actions)  # (M, d)
            true_conflict = action_conflict(ascent, data_actions - winner_actions)
            # true_action_cos (M,): not logged; the recorder reads it over the probes the density places in support
            result["true_conflict_frac"], result["true_action_cos"] = (true_conflict["conflict_frac"],
                                                                       true_conflict["action_cos"])
    if behavior_log_density is not None:
        for name, actions in points.items():
            result[f"behavior_logp_{name}"] = jnp.mean(jnp.maximum(behavior_log_density(observations, actions),
                                                                   LOG_DENSITY_FLOOR))
        deployed_logp = behavior_log_density(observations, deployed)  # (M,)
        result["behavior_logp"] = jnp.maximum(deployed_logp, LOG_DENSITY_FLOOR)
        result["true_ood_frac"] = jnp.mean(deployed_logp < ood_log_density)
    return result
