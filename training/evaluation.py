"""Evaluation (an observer, training.observer): every seed's deployed policy scored on the task at every
evaluation step and the last, into the run log; the deployed policy and its keys, shared with
`drol-diag evaluate` (training.trained_run)."""

from __future__ import annotations

import functools
import itertools
import sys

import jax
import jax.numpy as jnp
import numpy as np

from diagnostics.montecarlo import discounted_returns, mc_bias, mean_episode_length
from drol.learner import seed_key
from drol_diag.programs import KeptProgram
from drol_diag.runfolder import scoring, store
from drol_diag.settings import RunConfig
from drol_diag.tasks import Task
from drol_diag.tasks.base import VISITED, Visited
from training.observer import Chunk, Observer

EVAL_STREAM = 0x5EED  # evaluation keys: fold_in(fold_in(seed_key(seed), EVAL_STREAM), step)
Q_BLOCK = 4096  # visited steps per critic call: one compiled shape whatever the episodes' lengths
NO_VISITED = ("note: no Monte-Carlo critic check (mc_*): the task's evaluate returns no per-step record "
              "(drol_diag.tasks.base.Visited under 'visited'); everything else is unchanged")


def eval_seed(seed: int, step: int) -> int:
    """Episode seed of the evaluation of `seed` at `step` (a 31-bit integer)."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0] >> 1)


class DeployedPolicy:
    """One seed's deployed policy, as training evaluates it: observations (n, obs_dim) -> actions (n, action_dim)
    in [-1, 1] (float32), deterministic: call i (from 0; `reset()` starts again) samples its prior from
    fold_in(key, i), key = fold_in(fold_in(seed_key(seed), EVAL_STREAM), step). ValueError for another shape."""

    def __init__(self, act_fn, actor_params, seed: int, step: int, obs_dim: int):
        self.act_fn, self.actor_params, self.obs_dim = act_fn, actor_params, int(obs_dim)
        self.seed, self.step = int(seed), int(step)
        self.key = jax.random.fold_in(jax.random.fold_in(seed_key(self.seed), EVAL_STREAM), self.step)
        self.reset()

    def reset(self) -> None:
        """Start the count of calls again: the next call draws the samples the first call drew."""
        self.calls = itertools.count()

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        observations = np.asarray(observations, np.float32)
        if observations.ndim != 2 or observations.shape[1] != self.obs_dim:
            raise ValueError(f"observations must be an array (n, {self.obs_dim}), got shape {observations.shape}")
        key = jax.random.fold_in(self.key, next(self.calls))
        return np.asarray(self.act_fn(self.actor_params, jnp.asarray(observations), key))


@functools.lru_cache(maxsize=64)
def make_visited_q(learner) -> KeptProgram:
    """(critic_params, observations (Q_BLOCK, obs_dim), actions (Q_BLOCK, d)) -> (min, mean) over the critic
    ensemble, each (Q_BLOCK,); one per learner in a process, kept across processes (drol_diag.programs)."""
    def q_of(learner):
        def q(critic_params, observations, actions):
            values = learner.critic.apply(critic_params, observations, actions)  # (num_critics, Q_BLOCK)
            return jnp.min(values, axis=0), jnp.mean(values, axis=0)
        return q
    return KeptProgram("visited_q", learner, q_of)


@functools.lru_cache(maxsize=64)
def act_program(learner) -> KeptProgram:
    """drol.learner.make_act's program, kept across processes."""
    return KeptProgram("act", learner, lambda learner: learner.act)


def visited_q(q_fn, critic_params, visited: Visited) -> tuple[np.ndarray, np.ndarray]:
    """The critic's ensemble min and mean at every visited (s, a), each (M,) float64, in blocks of Q_BLOCK."""
    m = len(visited.rewards)
    padded = -(-m // Q_BLOCK) * Q_BLOCK
    observations = np.zeros((padded, visited.observations.shape[1]), np.float32)
    actions = np.zeros((padded, visited.actions.shape[1]), np.float32)
    observations[:m], actions[:m] = visited.observations, visited.actions
    blocks = [q_fn(critic_params, observations[i:i + Q_BLOCK], actions[i:i + Q_BLOCK])
              for i in range(0, padded, Q_BLOCK)]
    return tuple(np.concatenate([np.asarray(b[j], np.float64) for b in blocks])[:m] for j in (0, 1))


def evaluate_seeds(task: Task, learner, states, seeds: list[int], step: int,
                   episodes: int, act_fn, q_fn=None) -> dict[str, np.ndarray]:
    """Evaluate every seed's deployed policy; diverged seeds get NaN. Returns {eval_<name>: (S,)} for each number
    the task's evaluator reports (eval_score always), and with `q_fn` (make_visited_q) the Monte-Carlo critic check
    {mc_<name>: (S,)} (diagnostics.montecarlo) where the evaluator returns its VISITED steps.
    `act_fn`: the jitted `learner.act` (one batch shape)."""
    results: list[dict[str, float]] = []
    diverged = np.asarray(states.diverged)
    # each seed's parameters sliced on the host: slicing device arrays compiles a program per leaf shape
    actor_params = jax.tree.map(np.asarray, states.actor_params)
    critic_params = jax.tree.map(np.asarray, states.critic_params) if q_fn is not None else None  # (MC check only)
    for i, seed in enumerate(seeds):
        if diverged[i]:
            results.append({})
            continue
        params = jax.tree.map(lambda x, i=i: x[i], actor_params)
        policy = DeployedPolicy(act_fn, params, seed, step, learner.obs_dim)
        result = dict(task.evaluate(policy, episodes, eval_seed(seed, step)))
        visited = result.pop(VISITED, None)
        if q_fn is not None and visited is not None:
            returns, counted = discounted_returns(visited, learner.config.discount)
            seed_critic = jax.tree.map(lambda x, i=i: x[i], critic_params)
            result.update(mc_bias(*visited_q(q_fn, seed_critic, visited), returns, counted),
                          mc_episode_length=mean_episode_length(visited))
        results.append(result)
    names = sorted({k for r in results for k in r if isinstance(r[k], (int, float))} | {"score"})  # (all diverged too)
    return {name if name.startswith("mc_") else f"eval_{name}": np.array([float(r.get(name, np.nan)) for r in results])
            for name in names}


class Evaluations(Observer):
    phase = "evaluation"
    said_no_visited = False  # NO_VISITED is said once per run

    def __init__(self, task: Task, learner, run: RunConfig, log: store.RunLog):
        self.task, self.learner, self.run, self.log, self.act_fn = task, learner, run, log, act_program(learner)
        self.q_fn = make_visited_q(learner)

    def on_chunk(self, chunk: Chunk) -> None:
        run, step = self.run, chunk.step
        if step % run.eval_interval and not chunk.last:
            return
        counted = scoring.counted_evaluations(np.array([step]), run.eval_interval, step if chunk.last else run.steps)
        evaluated = evaluate_seeds(self.task, self.learner, chunk.states, list(run.seeds), step, run.eval_episodes,
                                   self.act_fn, self.q_fn)
        if "mc_steps" not in evaluated and not self.said_no_visited:
            print(NO_VISITED, file=sys.stderr)
            self.said_no_visited = True
        chunk.rows["eval_step"] = {**evaluated, "eval_counted": np.full(len(run.seeds), counted[0])}
        self.log.append("eval_step", step, chunk.rows["eval_step"])
