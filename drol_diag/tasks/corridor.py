"""The embedded `corridor` family: a multi-step task with ground truth, where a critic's error travels
through TD bootstrapping (every other embedded task is one step long). No simulator: jax.numpy.

The MDP, in d action dims (d >= 2), horizon H:
- state: a point x in R^d and the step index t; the observation is (x, t / H), obs_dim d + 1 (time in
  the state makes the horizon a true termination, so Q depends on the observation alone);
- dynamics: x' = x + step_size * a, a clipped to [-1, 1]^d; episodes start at x uniform in
  [-start_spread, start_spread]^d, t = 0;
- reward of a step, from where it lands: -off_corridor_penalty if |x'_i| > corridor_width for some
  i >= 1 (the step leaves the corridor and terminates), else (clip(x'_0 / goal, 0, 1))^2, rising towards
  the goal region x'_0 >= goal where it is 1; a step also terminates at t = H - 1 (masks 0 there);
- the behaviour policy (the data's): a_0 uniform on [forward_low, forward_high] (forward on average) and,
  for i >= 1, a_i uniform on [m_i - h, m_i + h], m_i = -lateral_pull * clip(x_i / corridor_width, -1, 1),
  h = lateral_half_width: a pull back to the axis. With lateral_pull >= h it never leaves the corridor from
  inside it, so the data hold no off-corridor step: a critic must extrapolate the penalty. Its mean speed
  (0.03 a step with the defaults) brings x_0 to 3.0 +- 0.4 by the horizon: it reaches the goal (4.0) in
  about 0.6% of episodes.

Ground truth:
- `behavior_log_density`: closed form, -log(forward_high - forward_low) - (d - 1) log(2 h) inside the
  box, -inf outside (the diagnostics floor it);
- `true_value(s, a)`: Q of the behaviour, r(s, a) + discount * (1 - done) * V(t + 1, x'_0). Because the
  behaviour never leaves the corridor and the reward depends on x_0 alone, V depends on (t, x_0) only and
  obeys V(t, x) = mean over a_0 of [f(x + step a_0) + discount V(t + 1, x + step a_0)], V(H, .) = 0: a
  convolution with the uniform a_0, computed backwards once (float64, on a grid of x_0 with spacing
  `grid_spacing`, trapezoid sums over the window) and read by linear interpolation: no Monte-Carlo
  error. Measured: against a grid 5 times finer at most 1.3e-4 off (on returns up to 63); against 16,384
  Monte-Carlo behaviour rollouts from states at t = 0 to 90, within their standard error (0.002 to 0.02);
  against behaviour episodes through `evaluate`, tests/test_corridor.py. Cost: 8,192 pairs in 0.3 ms
  (2-D) to 0.4 ms (8-D) on 2 CPU cores after compiling; the table (101 x 10,301 floats) takes 0.1 s;
- `best_value(s)`: the best supported action's true value, a_0 = forward_high, a_i = m_i (Q^beta rises
  with a_0 and no supported lateral step leaves the corridor).

Evaluation: `num_episodes` episodes of the policy from initial states drawn from (spec.seed, seed), the
policy called with one fixed batch (num_episodes, obs_dim) every step (rows of ended episodes hold their last
observation; their actions are ignored). "return": the mean undiscounted return; "length": the mean episode
length; "score": the return over the oracle's from the same initial states (the straight run at
a_0 = forward_high, a_i = m_i: the best supported policy and, with forward_high = 1, the optimal one);
VISITED: every step taken (drol_diag.tasks.base.Visited).

Reference levels: "random behaviour action" (the behaviour policy: 0.267 in 2-D, 0.266 in 8-D; a mean
return of 19.7 against the oracle's 73.8), "dataset average" (its mean action, a_0 = 0.3, a_i = m_i: 0.258,
0.259), "oracle" (1.0).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from drol_diag.tasks.base import DATASET_KEYS, VISITED, Evaluator, Policy, Task, Visited
from drol_diag.tasks.onestep import DATASET_AVERAGE, ORACLE, RANDOM_BEHAVIOUR, REFERENCE_SEED

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
    discount: float = 0.99  # of the truth (the learner's default)
    start_spread: float = 0.1  # initial x uniform in [-start_spread, start_spread]^d
    grid_spacing: float = 0.002  # the value table's spacing in x_0 (divides step_size * forward_low, _high)
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
        (spec.horizon < 1 or spec.goal <= 0, "horizon >= 1 and goal > 0")] if bad]
    if problems:
        raise ValueError(f"corridor task: invalid spec {spec}; valid: {', '.join(problems)}")


class Corridor:
    """The MDP, the behaviour policy and the truth of one spec (jnp functions, usable under jit)."""

    def __init__(self, spec: CorridorSpec):
        check_spec(spec)
        self.spec = spec
        self.grid_low, self.values = value_table(spec)  # V (H + 1, G) on x_0 = grid_low + i * grid_spacing

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
        """The reward inside the corridor, (clip(x_0 / goal, 0, 1))^2; shape of x0."""
        return jnp.square(jnp.clip(x0 / self.spec.goal, 0.0, 1.0))

    def transition(self, observations: jnp.ndarray, actions: jnp.ndarray) -> tuple:
        """(next positions (n, d), rewards (n,), terminated (n,) bool) of actions (n, d), clipped to [-1, 1]."""
        spec = self.spec
        positions = observations[:, :-1] + spec.step_size * jnp.clip(actions, -1.0, 1.0)
        off = jnp.any(jnp.abs(positions[:, 1:]) > spec.corridor_width, axis=-1)
        rewards = jnp.where(off, -spec.off_corridor_penalty, self.progress(positions[:, 0]))
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
        """The oracle's action (n, d): the fastest supported step forward, centred across."""
        forward = jnp.full((observations.shape[0], 1), self.spec.forward_high)
        return jnp.concatenate([forward, self.lateral_means(observations)], axis=-1)

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
    def state_value(self, t: jnp.ndarray, x0: jnp.ndarray) -> jnp.ndarray:
        """V(t, x_0) (n,) of the behaviour at steps t (n,) in [0, H] (V(H) = 0), linear in x_0 between grid points."""
        position = jnp.clip((x0 - self.grid_low) / self.spec.grid_spacing, 0.0, self.values.shape[1] - 1.0)
        left = jnp.minimum(jnp.floor(position).astype(jnp.int32), self.values.shape[1] - 2)
        weight = position - left
        return (1 - weight) * self.values[t, left] + weight * self.values[t, left + 1]

    def true_value(self, observations: jnp.ndarray, actions: jnp.ndarray) -> jnp.ndarray:
        """Q of the behaviour (n,): r(s, a) + discount (1 - done) V(t + 1, x'_0)."""
        positions, rewards, terminated = self.transition(observations, actions)
        later = self.state_value(self.steps(observations) + 1, positions[:, 0])
        return rewards + self.spec.discount * jnp.where(terminated, 0.0, later)

    def best_value(self, observations: jnp.ndarray) -> jnp.ndarray:
        """The best supported action's true value (n,) (module docstring)."""
        return self.true_value(observations, self.best_action(observations))

    def oracle_returns(self, positions: jnp.ndarray) -> jnp.ndarray:
        """The undiscounted return (n,) of the oracle from positions (n, d) at t = 0 (straight run)."""
        spec = self.spec
        travelled = spec.step_size * spec.forward_high * jnp.arange(1, spec.horizon + 1)
        return jnp.sum(self.progress(positions[:, :1] + travelled), axis=-1)

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


def value_table(spec: CorridorSpec) -> tuple[float, jnp.ndarray]:
    """(x_0 of the first grid point, V (H + 1, G) float32): the behaviour's value at every step t in [0, H] and
    grid point, by the backward recursion of the module docstring (float64; trapezoid sums over the window of
    the uniform a_0). Past both ends V is flat (no reward behind reach, the goal's everywhere beyond), so the
    table is read clamped."""
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


class LazyLevels(Mapping):
    """A corridor task's reference levels, computed on first access (training never needs them)."""

    def __init__(self, spec: CorridorSpec):
        self.spec = spec

    @functools.cached_property
    def _levels(self) -> dict[str, float]:
        return reference_levels(self.spec)

    def __getitem__(self, name: str) -> float:
        return self._levels[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._levels)

    def __len__(self) -> int:
        return len(self._levels)


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
                evaluate=corridor_evaluator(spec, corridor), reference_levels=LazyLevels(spec),
                true_value=jax.jit(corridor.true_value), best_value=jax.jit(corridor.best_value),
                behavior_log_density=jax.jit(corridor.behavior_log_density))
