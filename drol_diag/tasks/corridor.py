"""The embedded `corridor` family: a multi-step task with ground truth, where a critic's error travels
through TD bootstrapping (every other embedded task is one step long). No simulator: jax.numpy.

The MDP, in d action dims (d >= 2), horizon H:
- state: a point x in R^d and the step index t; the observation is (x, t / H), obs_dim d + 1 (time in
  the state makes the horizon a true termination, so Q depends on the observation alone);
- dynamics: x' = x + step_size * a, a clipped to [-1, 1]^d; episodes start at x uniform in
  [-start_spread, start_spread]^d, t = 0;
- reward of a step, from where it lands: -off_corridor_penalty if |x'_i| > corridor_width for some
  i >= 1 (the step leaves the corridor and terminates), else (clip(x'_0 / goal, 0, 1))^2, rising towards
  the goal region x'_0 >= goal where it is 1, plus the lure lateral_gain * clip(x'_1 / corridor_width, 0, 1),
  rising towards the corridor's edge x_1 = +corridor_width: a cliff, one step past which lies the penalty
  (the referee's case: a critic that extrapolates the rise past the data's edge pulls a policy with too
  little BC off the corridor); a step also terminates at t = H - 1 (masks 0 there);
- the behaviour policy (the data's): a_0 uniform on [forward_low, forward_high] (forward on average) and,
  for i >= 1, a_i uniform on [m_i - h, m_i + h], m_i = -lateral_pull * clip(x_i / corridor_width, -1, 1),
  h = lateral_half_width: a pull back to the axis. With lateral_pull >= h it never leaves the corridor from
  inside it, so the data hold no off-corridor step: a critic must extrapolate the penalty. Its mean speed
  (0.03 a step with the defaults) brings x_0 to 3.0 +- 0.4 by the horizon: it reaches the goal (4.0) in
  about 0.6% of episodes; across, it stays near the axis (x_1 with standard deviation about 0.07), so the
  data see the lure only at its foot (2.7 of a mean return of 22.4; the oracle's: 45.5 of 119.4).

Ground truth:
- `behavior_log_density`: closed form, -log(forward_high - forward_low) - (d - 1) log(2 h) inside the
  box, -inf outside (the diagnostics floor it);
- `true_value(s, a)`: Q of the behaviour, r(s, a) + discount * (1 - done) * (V0(t + 1, x'_0) + V1(t + 1, x'_1)),
  r and done from the landing point (off the corridor: -penalty, done). Because the behaviour never ends an
  episode early and the reward inside is additive in x_0 and x_1 (whose behaviour actions are independent),
  its V splits as V(t, x) = V0(t, x_0) + V1(t, x_1), V0(H, .) = V1(H, .) = 0, each by its own backward
  recursion on a 1-D grid, computed once in float64 and read by linear interpolation (no Monte-Carlo error):
  V0(t, x) = mean over a_0 of [progress(x + step a_0) + discount V0(t + 1, x + step a_0)], a convolution with
  the uniform a_0 (grid of x_0 with spacing `grid_spacing`, trapezoid sums over the window);
  V1(t, x) = mean over a_1 ~ U[m(x) - h, m(x) + h] of [lure + discount V1(t + 1)] at x + step a_1, a window
  that moves with x (grid of x_1 on [-corridor_width, corridor_width], spacing `lateral_grid_spacing`; the
  exact integral of the integrand's linear interpolant over the window, lateral_value_table). Measured:
  against grids 5 times finer at most 2.2e-4 off (on 8,192 random pairs, |Q| up to 67; V1 alone 1.2e-4);
  against 16,384 Monte-Carlo rollouts (the action, then the behaviour) from 40 states at t = 0 to 99 and
  x_1 from -0.3 to 0.45, for a behaviour action and the best one, within 1.9 of their standard errors
  (0 to 0.03); against behaviour episodes through `evaluate`, tests/test_corridor.py. Cost: 8,192 pairs in
  0.4 ms (2-D) to 1.2 ms (8-D) on 2 busy CPU cores after compiling; the tables (101 x 10,301 and
  101 x 1,001 floats) take 0.17 s and 0.04 s;
- `best_value(s)`: the best supported action's true value, a_0 = forward_high, a_1 = m_1 + h (the largest
  supported step towards the edge), a_i = m_i for i >= 2: provably best, no search. Q^beta rises with a_0;
  with a_1 it rises too, since the lure rises with x'_1 and V1(t + 1, .) is nondecreasing (x + step m(x) is
  nondecreasing in x when step * lateral_pull <= corridor_width, so a behaviour started further out stays
  further out, step by step, and the window's mean of a nondecreasing function is nondecreasing), and no
  supported step leaves the corridor; the other axes do not enter Q (tests/test_corridor.py checks it
  against 65 supported a_1 and sampled supported actions).

Evaluation: `num_episodes` episodes of the policy from initial states drawn from (spec.seed, seed), the
policy called with one fixed batch (num_episodes, obs_dim) every step (rows of ended episodes hold their last
observation; their actions are ignored). "return": the mean undiscounted return; "length": the mean episode
length; "score": the return over the oracle's from the same initial states (best_action every step: the
fastest forward step and the largest supported step towards the edge, its gap to the edge shrinking as 0.9^t
with the defaults, never leaving: the best supported policy, since a position further out also allows a further
step; not the optimal one: an unsupported dash to just inside the edge scores 1.03);
VISITED: every step taken (drol_diag.tasks.base.Visited).

Reference levels: "random behaviour action" (the behaviour policy: 0.188 in 2-D, 0.186 in 8-D; a mean
return of 22.4 against the oracle's 119.4), "dataset average" (its mean action, a_0 = 0.3, a_i = m_i: 0.161,
0.162), "oracle" (1.0).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from drol_diag.tasks.base import DATASET_KEYS, VISITED, Evaluator, Policy, Task, Visited
from drol_diag.tasks.onestep import DATASET_AVERAGE, ORACLE, RANDOM_BEHAVIOUR, REFERENCE_SEED, LazyLevels

REFERENCE_EPISODES = 512  # episodes per reference level (the behaviour's score: standard error about 0.003)
EPISODE_BLOCK = 100  # the data are made this many behaviour episodes at a time (one compiled shape)


@dataclass(frozen=True)
class CorridorSpec:
    """Parameters of a `corridor` task (module docstring). Generation is deterministic from `seed`."""

    action_dim: int = 2  # d (>= 2): axis 0 runs along the corridor, the others across it
    horizon: int = 100  # H: an episode ends (masks 0) at step H - 1 at the latest
    step_size: float = 0.1  # x' = x + step_size * a
    forward_low: float = -0.4  # the behaviour's a_0 is uniform on [forward_low, forward_high]
    forward_high: float = 1.0  # ... (1.0: the fastest supported run is the fastest possible)
    lateral_half_width: float = 0.5  # h: the behaviour's a_i (i >= 1) is uniform on [m_i - h, m_i + h]
    lateral_pull: float = 0.5  # m_i = -lateral_pull * clip(x_i / corridor_width, -1, 1); >= h: never leaves
    corridor_width: float = 0.5  # a step landing at |x_i| > corridor_width (some i >= 1) terminates
    goal: float = 4.0  # the reward (x_0 / goal)^2 reaches 1 at x_0 = goal (the goal region beyond)
    off_corridor_penalty: float = 10.0  # the reward of the step that leaves the corridor is minus this
    lateral_gain: float = 0.5  # a step inside also earns lateral_gain * clip(x'_1 / corridor_width, 0, 1)
    discount: float = 0.99  # of the truth (the learner's default)
    start_spread: float = 0.1  # initial x uniform in [-start_spread, start_spread]^d
    grid_spacing: float = 0.002  # the forward value table's spacing in x_0 (divides step_size * forward_low, _high)
    lateral_grid_spacing: float = 0.001  # the lateral value table's spacing in x_1 (on [-corridor_width, width])
    num_transitions: int = 20_000  # training transitions (200 behaviour episodes)
    num_validation: int = 2_000  # held-out transitions
    seed: int = 0  # seed of the data and the evaluation's initial states

    @property
    def obs_dim(self) -> int:
        """d + 1: the position and t / H."""
        return self.action_dim + 1


CORRIDOR_TASKS: dict[str, CorridorSpec] = {
    "corridor-2d": CorridorSpec(),
    "corridor-8d": CorridorSpec(action_dim=8),
}


def check_spec(spec: CorridorSpec) -> None:
    """ValueError (one line) for a spec whose behaviour could leave the corridor or the action bounds."""
    shifts = [spec.step_size * bound / spec.grid_spacing for bound in (spec.forward_low, spec.forward_high)]
    problems = [text for bad, text in [
        (spec.action_dim < 2, "action_dim >= 2"),
        (not -1 <= spec.forward_low < spec.forward_high <= 1, "-1 <= forward_low < forward_high <= 1"),
        (not 0 < spec.lateral_half_width <= spec.lateral_pull, "0 < lateral_half_width <= lateral_pull"),
        (spec.lateral_pull + spec.lateral_half_width > 1, "lateral_pull + lateral_half_width <= 1"),
        (not spec.step_size * max(spec.lateral_pull, spec.lateral_half_width) <= spec.corridor_width,
         "step_size * lateral_pull <= corridor_width"),
        (not 0 <= spec.start_spread <= spec.corridor_width, "0 <= start_spread <= corridor_width"),
        (any(abs(s - round(s)) > 1e-6 for s in shifts), "grid_spacing dividing step_size * forward_low and _high"),
        (spec.horizon < 1 or spec.goal <= 0, "horizon >= 1 and goal > 0"),
        (spec.lateral_gain < 0, "lateral_gain >= 0"),
        (not 0 < spec.lateral_grid_spacing <= spec.corridor_width / 10,
         "0 < lateral_grid_spacing <= corridor_width / 10")] if bad]
    if problems:
        raise ValueError(f"corridor task: invalid spec {spec}; valid: {', '.join(problems)}")


class Corridor:
    """The MDP, the behaviour policy and the truth of one spec (jnp functions, usable under jit)."""

    def __init__(self, spec: CorridorSpec):
        check_spec(spec)
        self.spec = spec
        self.grid_low, self.values = value_table(spec)  # V0 (H + 1, G) on x_0 = grid_low + i * grid_spacing
        self.lateral_spacing, self.lateral_values = lateral_value_table(spec)  # V1 (H + 1, G1) on -width + j spacing

    # -- the MDP
    def observe(self, positions: jnp.ndarray, t: jnp.ndarray | int) -> jnp.ndarray:
        """Observations (n, d + 1) of positions (n, d) at step t (scalar or (n,))."""
        time = jnp.broadcast_to(jnp.asarray(t, jnp.float32) / self.spec.horizon, positions.shape[:1])
        return jnp.concatenate([positions, time[:, None]], axis=-1).astype(jnp.float32)

    def steps(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The step index t (n,) int32 of observations (n, d + 1), in [0, H - 1]."""
        t = jnp.round(observations[:, -1] * self.spec.horizon).astype(jnp.int32)
        return jnp.clip(t, 0, self.spec.horizon - 1)

    def progress(self, x0: jnp.ndarray) -> jnp.ndarray:
        """The forward part of the reward inside the corridor, (clip(x_0 / goal, 0, 1))^2; shape of x0."""
        return jnp.square(jnp.clip(x0 / self.spec.goal, 0.0, 1.0))

    def lure(self, x1: jnp.ndarray) -> jnp.ndarray:
        """The lateral part of the reward inside the corridor, lateral_gain clip(x_1 / width, 0, 1); shape of x1."""
        return self.spec.lateral_gain * jnp.clip(x1 / self.spec.corridor_width, 0.0, 1.0)

    def transition(self, observations: jnp.ndarray, actions: jnp.ndarray) -> tuple:
        """(next positions (n, d), rewards (n,), terminated (n,) bool) of actions (n, d), clipped to [-1, 1]."""
        spec = self.spec
        positions = observations[:, :-1] + spec.step_size * jnp.clip(actions, -1.0, 1.0)
        off = jnp.any(jnp.abs(positions[:, 1:]) > spec.corridor_width, axis=-1)
        inside = self.progress(positions[:, 0]) + self.lure(positions[:, 1])
        rewards = jnp.where(off, -spec.off_corridor_penalty, inside)
        return positions, rewards, off | (self.steps(observations) + 1 >= spec.horizon)

    def initial_positions(self, key: jax.Array, n: int) -> jnp.ndarray:
        """n starting points (n, d), uniform in [-start_spread, start_spread]^d."""
        spread = self.spec.start_spread
        return jax.random.uniform(key, (n, self.spec.action_dim), minval=-spread, maxval=spread)

    # -- the behaviour
    def lateral_means(self, observations: jnp.ndarray) -> jnp.ndarray:
        """m (n, d - 1): the centre of the behaviour's lateral actions, pulling back to the axis."""
        spec = self.spec
        return -spec.lateral_pull * jnp.clip(observations[:, 1:-1] / spec.corridor_width, -1.0, 1.0)

    def behaviour_actions(self, key: jax.Array, observations: jnp.ndarray) -> jnp.ndarray:
        """One draw of the behaviour per state: actions (n, d)."""
        spec = self.spec
        u = jax.random.uniform(key, (observations.shape[0], spec.action_dim))
        forward = spec.forward_low + (spec.forward_high - spec.forward_low) * u[:, :1]
        return jnp.concatenate([forward, self.lateral_means(observations)
                                + spec.lateral_half_width * (2 * u[:, 1:] - 1)], axis=-1)

    def mean_action(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The behaviour's mean action (n, d): the dataset average."""
        forward = jnp.full((observations.shape[0], 1), (self.spec.forward_low + self.spec.forward_high) / 2)
        return jnp.concatenate([forward, self.lateral_means(observations)], axis=-1)

    def best_action(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The oracle's action (n, d): the fastest supported step forward, the largest supported step towards the
        edge on axis 1 (a_1 = m_1 + h), centred on the other axes."""
        means = self.lateral_means(observations)
        forward = jnp.full((observations.shape[0], 1), self.spec.forward_high)
        return jnp.concatenate([forward, means[:, :1] + self.spec.lateral_half_width, means[:, 1:]], axis=-1)

    def behavior_log_density(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """log pi_beta(a | s) (n,): uniform on the box (module docstring), -inf outside."""
        spec = self.spec
        forward, lateral = actions[:, 0], actions[:, 1:] - self.lateral_means(observations)
        inside = ((forward >= spec.forward_low) & (forward <= spec.forward_high)
                  & jnp.all(jnp.abs(lateral) <= spec.lateral_half_width, axis=-1))
        log_p = (-math.log(spec.forward_high - spec.forward_low)
                 - (spec.action_dim - 1) * math.log(2 * spec.lateral_half_width))
        return jnp.where(inside, log_p, -jnp.inf)

    # -- the truth
    def state_value(self, t: jnp.ndarray, positions: jnp.ndarray) -> jnp.ndarray:
        """V(t, x) = V0(t, x_0) + V1(t, x_1) (n,) of the behaviour at steps t (n,) in [0, H] (V(H) = 0) and positions
        (n, d) inside the corridor: each table read linearly between its grid points (clamped at its ends)."""
        forward = (positions[:, 0] - self.grid_low) / self.spec.grid_spacing
        lateral = (positions[:, 1] + self.spec.corridor_width) / self.lateral_spacing
        return interpolate(self.values, t, forward) + interpolate(self.lateral_values, t, lateral)

    def true_value(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """Q of the behaviour (n,): r(s, a) + discount (1 - done) (V0(t + 1, x'_0) + V1(t + 1, x'_1))."""
        positions, rewards, terminated = self.transition(observations, actions)
        later = self.state_value(self.steps(observations) + 1, positions)
        return rewards + self.spec.discount * jnp.where(terminated, 0.0, later)

    def best_value(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The best supported action's true value (n,) (module docstring)."""
        return self.true_value(observations, self.best_action(observations))

    def oracle_returns(self, positions: jnp.ndarray) -> jnp.ndarray:
        """The undiscounted return (n,) of the oracle (best_action every step; it never leaves the corridor) from
        positions (n, d) at t = 0."""

        def step(positions, t):
            observations = self.observe(positions, t)
            next_positions, rewards, _ = self.transition(observations, self.best_action(observations))
            return next_positions, rewards

        _, rewards = jax.lax.scan(step, positions, jnp.arange(self.spec.horizon))
        return jnp.sum(rewards, axis=0)

    # -- the data
    def behaviour_episodes(self, key: jax.Array, num_episodes: int) -> dict[str, jnp.ndarray]:
        """num_episodes behaviour episodes of H steps: dataset columns (E, H, ...) and `alive` (E, H) (the step
        was taken: no termination before it)."""
        init_key, action_key = jax.random.split(key)

        def step(carry, t):
            positions, alive = carry
            observations = self.observe(positions, t)
            actions = self.behaviour_actions(jax.random.fold_in(action_key, t), observations)
            next_positions, rewards, terminated = self.transition(observations, actions)
            row = dict(observations=observations, actions=actions, rewards=rewards,
                       masks=1.0 - terminated, next_observations=self.observe(next_positions, t + 1), alive=alive)
            return (next_positions, alive & ~terminated), row

        start = (self.initial_positions(init_key, num_episodes), jnp.ones(num_episodes, bool))
        _, rows = jax.lax.scan(step, start, jnp.arange(self.spec.horizon))
        return {k: jnp.swapaxes(v, 0, 1) for k, v in rows.items()}


def interpolate(table: jnp.ndarray, t: jnp.ndarray, position: jnp.ndarray) -> jnp.ndarray:
    """table[t, position] (n,) for a table (H + 1, G), steps t (n,) and fractional grid positions (n,): linear
    between grid points, clamped to [0, G - 1]."""
    position = jnp.clip(position, 0.0, table.shape[1] - 1.0)
    left = jnp.minimum(jnp.floor(position).astype(jnp.int32), table.shape[1] - 2)
    weight = position - left
    return (1 - weight) * table[t, left] + weight * table[t, left + 1]


def value_table(spec: CorridorSpec) -> tuple[float, jnp.ndarray]:
    """(x_0 of the first grid point, V0 (H + 1, G) float32): the forward part of the behaviour's value at every step
    t in [0, H] and grid point, by the backward recursion of the module docstring (float64; trapezoid sums over the
    window of the uniform a_0). Past both ends V0 is flat (no reward behind reach, the goal's everywhere beyond),
    so the table is read clamped."""
    dx, step = spec.grid_spacing, spec.step_size
    reach = spec.start_spread + step * spec.horizon + 2 * step  # no x_0 any policy reaches lies beyond
    low, high = -reach, max(reach, spec.goal + step * max(-spec.forward_low, 0.0) * spec.horizon + 2 * step)
    grid = low + dx * np.arange(int(np.ceil((high - low) / dx)) + 1)
    back, ahead = round(-step * spec.forward_low / dx), round(step * spec.forward_high / dx)  # window, grid points
    pad_low, pad_high = max(back, 0) + 1, max(ahead, 0) + 1
    progress = np.square(np.clip(grid / spec.goal, 0.0, 1.0))
    values = np.zeros((spec.horizon + 1, len(grid)))
    for t in range(spec.horizon - 1, -1, -1):
        landing = np.pad(progress + spec.discount * values[t + 1], (pad_low, pad_high), mode="edge")
        integral = np.concatenate([[0.0], np.cumsum((landing[1:] + landing[:-1]) / 2)])  # in grid steps
        index = np.arange(len(grid)) + pad_low
        values[t] = (integral[index + ahead] - integral[index - back]) / (ahead + back)
    return float(low), jnp.asarray(values, jnp.float32)


def lateral_value_table(spec: CorridorSpec) -> tuple[float, jnp.ndarray]:
    """(the grid's spacing, V1 (H + 1, G1) float32): the lateral part of the behaviour's value at every step t in
    [0, H] and point x_1 = -width + j * spacing of [-width, width], by the backward recursion of the module
    docstring (float64): V1(t, x) is the mean of f = lure + discount V1(t + 1) over the landing window
    [x + step (m(x) - h), x + step (m(x) + h)] (inside the corridor): the exact integral of f's linear interpolant
    (its cumulative trapezoid sum, plus the part of a grid cell) over the window, by the window's width."""
    width, step, h = spec.corridor_width, spec.step_size, spec.lateral_half_width
    cells = round(2 * width / spec.lateral_grid_spacing)  # (the spacing, rounded to divide the corridor's width)
    dx, grid = 2 * width / cells, np.linspace(-width, width, cells + 1)
    means = -spec.lateral_pull * np.clip(grid / width, -1.0, 1.0)
    window_low = np.clip(grid + step * (means - h), -width, width)  # (the clip: float64 noise only)
    window_high = np.clip(grid + step * (means + h), -width, width)
    lure = spec.lateral_gain * np.clip(grid / width, 0.0, 1.0)

    def cumulative(f: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The integral of f's linear interpolant from -width to x (n,)."""
        sums = np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2) * dx])
        position = np.clip((x + width) / dx, 0.0, len(grid) - 1.0)
        left = np.minimum(np.floor(position).astype(np.int64), len(grid) - 2)
        s = position - left
        return sums[left] + dx * (f[left] * s + (f[left + 1] - f[left]) * s**2 / 2)

    values = np.zeros((spec.horizon + 1, len(grid)))
    for t in range(spec.horizon - 1, -1, -1):
        landing = lure + spec.discount * values[t + 1]
        values[t] = (cumulative(landing, window_high) - cumulative(landing, window_low)) / (window_high - window_low)
    return dx, jnp.asarray(values, jnp.float32)


class BehaviourPolicy:
    """The behaviour as a Policy: call i draws fresh actions from fold_in(key(seed), i); deterministic."""

    def __init__(self, corridor: Corridor, seed: int):
        self.key, self.calls = jax.random.PRNGKey(seed), 0
        self.draw = jax.jit(corridor.behaviour_actions)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.asarray(self.draw(jax.random.fold_in(self.key, self.calls), jnp.asarray(observations)))


def corridor_evaluator(spec: CorridorSpec, corridor: Corridor) -> Evaluator:
    """The task's `evaluate` (module docstring), deterministic in its seed."""
    eval_key = jax.random.split(jax.random.PRNGKey(spec.seed), 3)[2]
    transition, observe = jax.jit(corridor.transition), jax.jit(corridor.observe)
    oracle = jax.jit(corridor.oracle_returns)

    def evaluate(policy: Policy, num_episodes: int, seed: int) -> dict:
        """{score, return, length, VISITED} of num_episodes episodes of `policy`."""
        n = int(num_episodes)
        positions = corridor.initial_positions(jax.random.fold_in(eval_key, seed), n)
        observations = np.asarray(observe(positions, 0))
        alive = np.ones(n, bool)
        taken = []  # per step: (alive (n,), observations, actions, rewards, terminated)
        for t in range(spec.horizon):
            if not alive.any():
                break
            actions = np.clip(np.asarray(policy(observations), np.float32), -1.0, 1.0)
            next_positions, rewards, terminated = (np.asarray(v) for v in transition(observations, actions))
            taken.append((alive, observations, actions, rewards.astype(np.float64), terminated))
            moved = np.asarray(observe(next_positions, t + 1))
            alive = alive & ~terminated
            observations = np.where(alive[:, None], moved, observations)  # ended rows hold their last observation
        step_alive, step_obs, step_actions, step_rewards, step_terminated = (np.stack(v, axis=1) for v in zip(*taken))
        episodes = np.broadcast_to(np.arange(n)[:, None], step_alive.shape)
        visited = Visited(step_obs[step_alive], step_actions[step_alive], step_rewards[step_alive],
                          episodes[step_alive].astype(np.int64), step_terminated[step_alive])
        returns = np.sum(np.where(step_alive, step_rewards, 0.0), axis=1)
        mean_return = float(np.mean(returns))
        return {"score": mean_return / float(np.mean(oracle(positions))), "return": mean_return,
                "length": float(np.mean(step_alive.sum(axis=1))), VISITED: visited}

    return evaluate


@functools.cache
def compiled(spec: CorridorSpec) -> Corridor:
    """The corridor of a spec (its value table built once per process)."""
    return Corridor(spec)


@functools.cache
def _episodes(spec: CorridorSpec):
    """key -> EPISODE_BLOCK behaviour episodes (Corridor.behaviour_episodes), compiled once per process."""
    return jax.jit(lambda key: compiled(spec).behaviour_episodes(key, EPISODE_BLOCK))


def reference_levels(spec: CorridorSpec) -> dict[str, float]:
    """{random behaviour action, dataset average, oracle: score} under the task's evaluate, REFERENCE_EPISODES
    episodes of REFERENCE_SEED (cached)."""
    return dict(_reference_levels(spec))


@functools.cache
def _reference_levels(spec: CorridorSpec) -> tuple[tuple[str, float], ...]:
    corridor = compiled(spec)
    evaluate = corridor_evaluator(spec, corridor)
    policies = {RANDOM_BEHAVIOUR: BehaviourPolicy(corridor, REFERENCE_SEED),
                DATASET_AVERAGE: lambda s: np.asarray(corridor.mean_action(jnp.asarray(s))),
                ORACLE: lambda s: np.asarray(corridor.best_action(jnp.asarray(s)))}
    return tuple((name, round(evaluate(policy, REFERENCE_EPISODES, REFERENCE_SEED)["score"], 6))  # (float32 noise off)
                 for name, policy in policies.items())


def corridor_task(name: str, spec: CorridorSpec | None = None) -> Task:
    """Build a `corridor` task (deterministic from spec.seed); `spec` overrides the named defaults. The data:
    behaviour episodes in order, cut at num_transitions (and num_validation) rows."""
    spec = spec or CORRIDOR_TASKS[name]
    corridor, episodes = compiled(spec), _episodes(spec)
    data_key, val_key, _ = jax.random.split(jax.random.PRNGKey(spec.seed), 3)

    def transitions(key: jax.Array, n: int) -> dict[str, np.ndarray]:
        blocks = [episodes(jax.random.fold_in(key, i)) for i in range(-(-n // (EPISODE_BLOCK * spec.horizon)))]
        alive = np.concatenate([np.asarray(b["alive"]) for b in blocks])  # (the behaviour never ends one early)
        return {k: np.concatenate([np.asarray(b[k], np.float32) for b in blocks])[alive][:n]
                for k in DATASET_KEYS}

    return Task(name=name, dataset=transitions(data_key, spec.num_transitions),
                validation=transitions(val_key, spec.num_validation),
                evaluate=corridor_evaluator(spec, corridor),
                reference_levels=LazyLevels(functools.partial(reference_levels, spec)),
                true_value=jax.jit(corridor.true_value), best_value=jax.jit(corridor.best_value),
                behavior_log_density=jax.jit(corridor.behavior_log_density), truth_key=f"{__name__}.Corridor {spec!r}")
