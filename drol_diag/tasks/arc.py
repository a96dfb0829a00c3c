"""The embedded `arc` family: a one-step contextual bandit whose data actions lie, per state, along a
curve (a 1-D manifold of the action space) whose value rises towards the end where the data are
sparsest. A candidate can climb along the data to the best end; leaving the curve is never rewarded.
The geometry the paper argues dynamic routing is for (ownership can migrate along the support).

Geometry, in a base frame that the state then turns (onestep.rotate, each plane by up to `max_rotation`):
- the curve: the arc of the circle of radius R in action dims (0, 1) from angle -span/2 (its start,
  u = 0) to +span/2 (its best end, u = 1); beyond 2-D the other dims drift linearly along it,
  a_j = l_j(alpha) = sign_j * lift * (2 alpha / span - 1) (signs fixed by the seed), so the curve is
  not flat; alpha = span * u is the angle along the arc from its start;
- the data: u from a truncated exponential on [0, 1] with rate `density_decay` (lambda: the density
  at the best end is exp(-lambda) times the start's), then Gaussian noise of std sigma =
  `action_noise` off the curve: along the arc (angle noise sigma / R), radially, and in every lift dim;
- the value (= the deterministic reward): h(alpha) times a tube factor, h rising linearly from
  `bottom_value` at the start to `top_value` at the best end,
  v(s, a) = h(clip(alpha / span, 0, 1)) * exp(-(beyond^2 + (rho - R)^2 + sum_j (a_j - l_j(alpha))^2) / (2 w^2)),
  with (rho, alpha) the polar coordinates of the action in the base frame, beyond = R * (the angle
  past either end), w = `value_width`. Its maximum, `top_value`, is at the best end of the curve.

Ground truth: `true_value` is v (closed form). `behavior_log_density` is closed form:
log p(a | s) = log p_alpha(alpha) + log N(rho; R, sigma^2) - log rho + sum_j log N(a_j; l_j(alpha), sigma^2),
with p_alpha the truncated exponential convolved with the angle noise (erf terms). Exact but for three
tails, each below 1e-8 with the defaults: the radial Gaussian cut at rho = 0 (12 sigma), the angle
noise wrapping round the circle (more than 18 of its std from the gap opposite the arc), and
clipping to [-1, 1] (6 sigma beyond the farthest point of the curve).

Reference levels (onestep): "random behaviour action" (about 0.5), "dataset average" (inside the arc,
off the data), "oracle" (the best end, 1.0).
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr

from drol_diag.tasks import onestep
from drol_diag.tasks.base import Task


@dataclass(frozen=True)
class ArcSpec:
    """Parameters of an `arc` task (module docstring). Generation is deterministic from `seed`."""

    action_dim: int = 2  # d (>= 2): the arc lies in dims (0, 1), the others drift along it by +-lift
    obs_dim: int = 2  # states uniform in [-1, 1]^obs_dim
    radius: float = 0.6  # R, the arc's radius in the base frame
    arc_span: float = math.pi  # the angle the arc covers (pi: a half circle); must stay below 2 pi
    max_rotation: float = math.pi / 2  # the state turns the base frame by up to this angle per plane
    density_decay: float = 2.0  # lambda: data density at the best end is exp(-lambda) times the start's
    action_noise: float = 0.05  # sigma, std of the Gaussian noise off (and along) the curve
    lift: float = 0.2  # drift of each dim beyond the first two along the arc: from -lift to +lift (d > 2)
    value_width: float = 0.15  # w, std of the value's fall-off away from the curve
    top_value: float = 1.0  # value at the best end of the curve (u = 1)
    bottom_value: float = 0.3  # value at the start of the curve (u = 0), linear in u in between
    num_transitions: int = 20_000  # training transitions
    num_validation: int = 2_000  # held-out transitions
    eval_states: int = 4096  # fresh states per evaluation
    seed: int = 0  # seed of the task geometry and data


ARC_TASKS: dict[str, ArcSpec] = {
    "arc-2d": ArcSpec(),
    "arc-5d": ArcSpec(action_dim=5, obs_dim=5, value_width=0.2),  # wider: the noise lowers v in 4 off-curve dims
    # w grows with the d - 1 off-curve noise dims so that a behaviour draw keeps about half the top value
    "arc-8d": ArcSpec(action_dim=8, obs_dim=8, value_width=0.27),
    "arc-21d": ArcSpec(action_dim=21, obs_dim=21, value_width=0.45),
}


def log_normal_cdf_difference(low: jnp.ndarray, high: jnp.ndarray) -> jnp.ndarray:
    """log(Phi(high) - Phi(low)) for low <= high, stable in both tails (Phi: the standard normal CDF)."""
    flip = low > 0  # both in the upper tail: Phi(high) - Phi(low) = Phi(-low) - Phi(-high)
    lo, hi = jnp.where(flip, -high, low), jnp.where(flip, -low, high)
    log_hi = log_ndtr(hi)
    return log_hi + jnp.log1p(-jnp.exp(jnp.minimum(log_ndtr(lo) - log_hi, 0.0)))


class ArcGeometry(onestep.OneStepGeometry):
    """Closed-form geometry, value and behaviour density of an `arc` task (jnp, usable under jit)."""

    def __init__(self, spec: ArcSpec):
        if spec.action_dim < 2 or not 0 < spec.arc_span < 2 * math.pi:
            raise ValueError(f"arc task: action_dim {spec.action_dim} and arc_span {spec.arc_span}; valid: "
                             "action_dim >= 2 and 0 < arc_span < 2 pi")
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        self.plane_weights = onestep.plane_weights(rng, spec.action_dim, spec.obs_dim)
        self.lift_signs = jnp.asarray(rng.choice([-1.0, 1.0], size=spec.action_dim - 2), jnp.float32)  # (d - 2,)
        lam = spec.density_decay
        self.mean_u = 1 / lam - 1 / math.expm1(lam)  # E[u] of the truncated exponential
        # E[exp(i alpha)] = E[exp(i span u)] * exp(-tau^2 / 2) (alpha = span u + tau * noise).
        tau = spec.action_noise / spec.radius
        char = lam / -math.expm1(-lam) * (1 - cmath.exp(-lam + 1j * spec.arc_span)) / (lam - 1j * spec.arc_span)
        mean_turn = char * math.exp(-tau**2 / 2) * cmath.exp(-0.5j * spec.arc_span)  # E[exp(i (alpha - span/2))]
        self.mean_base = jnp.asarray([spec.radius * mean_turn.real, spec.radius * mean_turn.imag,
                                      *(spec.lift * np.asarray(self.lift_signs) * (2 * self.mean_u - 1))],
                                     jnp.float32)  # (d,) the mean data action in the base frame

    def _angles(self, observations: jnp.ndarray) -> jnp.ndarray:
        return onestep.state_angles(observations, self.plane_weights, self.spec.max_rotation)

    def lifts(self, alpha: jnp.ndarray) -> jnp.ndarray:
        """l(alpha): the curve's dims 2.. at arc angle alpha (n,); shape (n, d - 2)."""
        return self.spec.lift * self.lift_signs * (2 * alpha[:, None] / self.spec.arc_span - 1)

    def curve(self, observations: jnp.ndarray, u: jnp.ndarray) -> jnp.ndarray:
        """The point of the curve at parameter u (n,) in [0, 1] (0: start, 1: best end); shape (n, d)."""
        alpha = self.spec.arc_span * u
        turn = alpha - self.spec.arc_span / 2
        base = jnp.concatenate([self.spec.radius * jnp.stack([jnp.cos(turn), jnp.sin(turn)], axis=-1),
                                self.lifts(alpha)], axis=-1)
        return onestep.rotate(base, self._angles(observations))

    def base_coordinates(self, observations: jnp.ndarray, actions: jnp.ndarray) -> tuple:
        """(rho (n,), alpha (n,), others (n, d - 2)): the action's polar coordinates in the base frame,
        alpha the angle from the arc's start in (span/2 - pi, span/2 + pi]."""
        base = onestep.rotate(actions, self._angles(observations), inverse=True)
        x, y = base[:, 0], base[:, 1]
        x = jnp.where(jnp.abs(x) + jnp.abs(y) < 1e-12, 1e-12, x)  # atan2 and its gradient at the origin
        rho = jnp.sqrt(x**2 + y**2)
        half = self.spec.arc_span / 2
        alpha = jnp.mod(jnp.arctan2(y, x) + jnp.pi, 2 * jnp.pi) - jnp.pi + half
        return rho, alpha, base[:, 2:]

    def true_value(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """v(s, a) (module docstring), the deterministic reward; shape (n,)."""
        spec = self.spec
        rho, alpha, others = self.base_coordinates(observations, actions)
        u = jnp.clip(alpha / spec.arc_span, 0.0, 1.0)
        height = spec.bottom_value + (spec.top_value - spec.bottom_value) * u
        beyond = spec.radius * (jnp.maximum(alpha - spec.arc_span, 0.0) + jnp.maximum(-alpha, 0.0))
        off = beyond**2 + (rho - spec.radius) ** 2 + jnp.sum(jnp.square(others - self.lifts(alpha)), axis=-1)
        return height * jnp.exp(-off / (2 * spec.value_width**2))

    def log_density_along(self, alpha: jnp.ndarray) -> jnp.ndarray:
        """log p_alpha: density of alpha = span * u + tau * noise, u truncated exponential; shape (n,)."""
        spec = self.spec
        lam, span, tau = spec.density_decay, spec.arc_span, spec.action_noise / spec.radius
        kappa = lam / span
        m = alpha - kappa * tau**2
        return (math.log(kappa) - math.log(-math.expm1(-lam)) - kappa * alpha + 0.5 * kappa**2 * tau**2
                + log_normal_cdf_difference(-m / tau, (span - m) / tau))

    def behavior_log_density(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """log p(a | s) (module docstring: exact but for tails below 1e-8); shape (n,)."""
        sigma = self.spec.action_noise
        rho, alpha, others = self.base_coordinates(observations, actions)
        log_normal = lambda x: -0.5 * jnp.square(x / sigma) - 0.5 * math.log(2 * math.pi * sigma**2)
        return (self.log_density_along(alpha) + log_normal(rho - self.spec.radius) - jnp.log(rho)
                + jnp.sum(log_normal(others - self.lifts(alpha)), axis=-1))

    def sample_actions(self, key: jax.Array, observations: jnp.ndarray) -> tuple[jnp.ndarray, dict]:
        """u truncated exponential, Gaussian noise along and off the curve (module docstring); (n, d), {}."""
        spec = self.spec
        n = observations.shape[0]
        _, u_key, noise_key = jax.random.split(key, 3)
        uniform = jax.random.uniform(u_key, (n,))
        u = -jnp.log1p(uniform * math.expm1(-spec.density_decay)) / spec.density_decay  # inverse CDF
        noise = spec.action_noise * jax.random.normal(noise_key, (n, spec.action_dim))
        alpha = spec.arc_span * u + noise[:, 0] / spec.radius
        rho, turn = spec.radius + noise[:, 1], alpha - spec.arc_span / 2
        base = jnp.concatenate([jnp.stack([rho * jnp.cos(turn), rho * jnp.sin(turn)], axis=-1),
                                self.lifts(alpha) + noise[:, 2:]], axis=-1)
        return onestep.rotate(base, self._angles(observations)), {}

    def best_action(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The best end of the curve (u = 1), the oracle; shape (n, d)."""
        return self.curve(observations, jnp.ones(observations.shape[0]))

    def mean_action(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The conditional mean of the data actions (closed form; inside the arc, off the data); (n, d)."""
        base = jnp.broadcast_to(self.mean_base, (observations.shape[0], self.spec.action_dim))
        return onestep.rotate(base, self._angles(observations))


def reference_levels(spec: ArcSpec) -> dict[str, float]:
    """{random behaviour action, dataset average, oracle: score} under the task's evaluate (onestep)."""
    return onestep.reference_levels(spec, ArcGeometry)


def arc_task(name: str, spec: ArcSpec | None = None) -> Task:
    """Build an `arc` task (deterministic from spec.seed); `spec` overrides the named defaults."""
    return onestep.one_step_task(name, spec or ARC_TASKS[name], ArcGeometry)
