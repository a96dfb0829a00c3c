"""The episode evaluation's speed target.

    python benchmarks/evaluation.py [--quick] [--workers N] [--json PATH]

Evaluates a DROL actor at the paper size (cube-single-play-singletask-task1-v0 preset, 4x512,
freshly initialised) on 50 cube-single-singletask-task1-v0 episodes (time limit 200) through
the trainer's own code path (training.evaluation.evaluate_seeds with the jitted `learner.act`, as a
run evaluates), and times:

(a) the evaluation: environments stepping in the default worker pool (drol_diag.tasks.episodes.default_workers),
    and, for comparison, in this process;
(b) stepping the same environments alone, in this process, for the same episodes: the same resets and,
    step by step, the actions the evaluation took (recorded, replayed without any policy).

Both exclude the one-off XLA compilation and environment creation (reported separately). The
three paths must give identical per-episode results. Target from the evaluation issue:
(a) <= 1.5 x (b). And (c) the Monte-Carlo critic check over (a)'s visited steps (discounted returns, the
critic at every step, the bias; training.evaluation.evaluate_seeds with its q_fn): <= 0.1 x (a).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from drol_diag.platform import start_process  # noqa: E402

start_process()  # XLA:CPU flags and MUJOCO_GL before JAX and MuJoCo start
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import ogbench  # noqa: E402

from diagnostics.montecarlo import discounted_returns, mc_bias  # noqa: E402
from drol.learner import make_act, make_init  # noqa: E402
from drol.methods import make_learner  # noqa: E402
from drol_diag.settings import resolve  # noqa: E402
from drol_diag.tasks import Task  # noqa: E402
from drol_diag.tasks.episodes import EpisodeEvaluator, EpisodeResults, default_workers, episode_seed  # noqa: E402
from training.evaluation import evaluate_seeds, make_visited_q, visited_q  # noqa: E402

TASK = "cube-single-play-singletask-task1-v0"  # the dataset name ogbench builds cube-single-singletask-task1-v0 from
OBS_DIM, ACTION_DIM = 28, 5  # cube-single
TARGETS = {"eval_over_stepping": 1.5, "mc_check_over_eval": 0.1}
EVAL_STEP = 100_000  # the training step the evaluation pretends to be at (it picks the episode seeds)


class TimedEvaluation:
    """A Task.evaluate that runs an EpisodeEvaluator, timing the whole evaluation and the policy's calls,
    and recording every action batch the policy returned (for the replay)."""

    def __init__(self, evaluator: EpisodeEvaluator):
        self.evaluator = evaluator
        self.seconds = self.policy_seconds = 0.0
        self.actions: list[np.ndarray] = []  # per step: (num_envs, action_dim)
        self.results: EpisodeResults | None = None
        self.seed = -1

    def __call__(self, policy, num_episodes: int, seed: int) -> dict:
        self.actions, self.policy_seconds, self.seed = [], 0.0, seed

        def recording_policy(observations: np.ndarray) -> np.ndarray:
            start = time.perf_counter()
            actions = policy(observations)
            self.policy_seconds += time.perf_counter() - start
            self.actions.append(actions)
            return actions

        start = time.perf_counter()
        self.results = self.evaluator.run(recording_policy, num_episodes, seed)
        self.seconds = time.perf_counter() - start
        return self.results.summary()


def env_factory(max_episode_steps: int | None = None) -> functools.partial:
    """A picklable maker of one evaluation environment of TASK, as drol_diag.tasks makes them (time limit:
    the task's own, or `max_episode_steps`)."""
    limit = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    return functools.partial(ogbench.make_env_and_datasets, TASK, env_only=True, **limit)


def compile_policy(learner, states, act_fn, episodes: int) -> float:
    """Seconds to compile the jitted `act_fn` at the batch shape an evaluation of `episodes` episodes gives
    it (one call through evaluate_seeds, no environment)."""
    def warm_up(policy, num_episodes: int, seed: int) -> dict:  # one policy call at the evaluation's batch shape
        policy(np.zeros((min(num_episodes, 50), OBS_DIM), np.float32))
        return {"score": 0.0}

    start = time.perf_counter()
    evaluate_seeds(Task("warm-up", {}, evaluate=warm_up), learner, states, [0], EVAL_STEP, episodes, act_fn)
    return time.perf_counter() - start


def step_alone(envs: list, seed: int, actions: list[np.ndarray], lengths: np.ndarray) -> tuple[float, EpisodeResults]:
    """Seconds to reset envs[i] with episode_seed(seed, i) and step it lengths[i] times with the recorded
    actions (row i of each step's batch, clipped beforehand), stepping all episodes step by step as the
    evaluation does; and the per-episode results that gives."""
    space = envs[0].action_space
    clipped = [np.clip(np.asarray(batch, np.float32), space.low, space.high) for batch in actions]
    successes, returns = np.zeros(len(envs)), np.zeros(len(envs))
    start = time.perf_counter()
    for episode, env in enumerate(envs):
        env.reset(seed=episode_seed(seed, episode))
    for step, batch in enumerate(clipped):
        for episode in np.flatnonzero(lengths > step):
            _, reward, _, _, info = envs[episode].step(batch[episode])
            returns[episode] += float(reward)
            if step == lengths[episode] - 1:
                successes[episode] = float(info.get("success", 0.0))
    seconds = time.perf_counter() - start
    return seconds, EpisodeResults(successes=successes, returns=returns, lengths=lengths.copy(), visited=None)


def time_mc_check(learner, states, results: EpisodeResults) -> tuple[float, float]:
    """(compile seconds, seconds) of the Monte-Carlo critic check over an evaluation's visited steps, as
    evaluate_seeds runs it (compiled once first, then timed)."""
    q_fn, critic_params = make_visited_q(learner), jax.tree.map(lambda x: x[0], states.critic_params)

    def check() -> dict:
        returns, counted = discounted_returns(results.visited, learner.config.discount)
        return mc_bias(*visited_q(q_fn, critic_params, results.visited), returns, counted)

    start = time.perf_counter()
    check()
    compiled = time.perf_counter()
    check()
    return compiled - start, time.perf_counter() - compiled


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def same_results(a: EpisodeResults, b: EpisodeResults) -> bool:
    return all(np.array_equal(getattr(a, name), getattr(b, name)) for name in ("successes", "returns", "lengths"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 episodes instead of 50 (a rough figure)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: default_workers())")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    episodes = 10 if args.quick else 50
    workers = default_workers() if args.workers is None else args.workers

    print(f"machine: {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} usable cores, "
          f"jax {jax.__version__} ({jax.default_backend()}); {episodes} episodes of {TASK}, {workers} workers")
    config, _ = resolve(TASK, "paper")
    learner = make_learner(config, OBS_DIM, ACTION_DIM)
    states = make_init(learner)(jnp.asarray([0]))
    act_fn = make_act(learner)  # as training.driver does
    compile_s = compile_policy(learner, states, act_fn, episodes)

    make_env = env_factory()
    start = time.perf_counter()
    envs = [make_env() for _ in range(episodes)]
    create_in_process_s = time.perf_counter() - start
    in_process = TimedEvaluation(EpisodeEvaluator(iter(envs).__next__, workers=0))  # (the replay reuses these envs)
    in_process.evaluator.prepare(episodes)
    pooled = TimedEvaluation(EpisodeEvaluator(make_env, workers=workers))
    start = time.perf_counter()
    pooled.evaluator.prepare(episodes)
    create_pool_s = time.perf_counter() - start

    with pooled.evaluator:
        worker_cpu = [-cpu_seconds(pid) for pid in pooled.evaluator.worker_pids]
        parent_cpu = -time.process_time()
        pooled_scores = evaluate_seeds(Task(TASK, {}, evaluate=pooled), learner, states, [0], EVAL_STEP, episodes,
                                       act_fn)
        parent_cpu += time.process_time()
        worker_cpu = [used + cpu_seconds(pid) for used, pid in zip(worker_cpu, pooled.evaluator.worker_pids)]
    evaluate_seeds(Task(TASK, {}, evaluate=in_process), learner, states, [0], EVAL_STEP, episodes, act_fn)
    stepping_s, replayed = step_alone(envs, pooled.seed, pooled.actions, pooled.results.lengths)
    identical = same_results(pooled.results, in_process.results) and same_results(pooled.results, replayed)
    compiles = act_fn._cache_size()
    mc_compile_s, mc_s = time_mc_check(learner, states, pooled.results)

    steps = int(pooled.results.lengths.sum())
    figures = {
        "episodes": episodes, "workers": workers, "env_steps": steps, "policy_calls": len(pooled.actions),
        "score": float(pooled_scores["eval_score"][0]), "mean_length": float(pooled.results.lengths.mean()),
        "stepping_alone_s": stepping_s, "eval_s": pooled.seconds, "eval_policy_s": pooled.policy_seconds,
        "eval_worker_cpu_s": worker_cpu, "eval_parent_cpu_s": parent_cpu,
        "eval_in_process_s": in_process.seconds, "eval_in_process_policy_s": in_process.policy_seconds,
        "eval_over_stepping": pooled.seconds / stepping_s, "in_process_over_stepping": in_process.seconds / stepping_s,
        "compile_s": compile_s, "act_compilations": compiles, "create_envs_in_process_s": create_in_process_s,
        "create_envs_pool_s": create_pool_s, "identical_results": identical, "targets": TARGETS,
        "mc_check_s": mc_s, "mc_check_compile_s": mc_compile_s, "mc_check_over_eval": mc_s / pooled.seconds,
    }
    print(f"one-off: XLA compilation of the policy {compile_s:.2f} s ({compiles} program for the whole benchmark); "
          f"creating {episodes} environments {create_in_process_s:.1f} s in this process, {create_pool_s:.1f} s in "
          f"{workers} workers (start-up included)")
    print(f"stepping the environments alone (one process, {steps} steps, recorded actions): {stepping_s:.2f} s "
          f"({stepping_s / steps * 1e3:.2f} ms/step)")
    print(f"evaluation, {workers} workers:  {pooled.seconds:.2f} s (policy {pooled.policy_seconds:.2f} s in "
          f"{len(pooled.actions)} calls); {figures['eval_over_stepping']:.2f}x stepping alone "
          f"(target <= {TARGETS['eval_over_stepping']})")
    print(f"  CPU time: workers {', '.join(f'{c:.2f}' for c in worker_cpu)} s, this process {parent_cpu:.2f} s "
          f"(on {workers} idle cores the evaluation takes at least the largest worker's plus this process's: "
          f"{max(worker_cpu, default=0.0) + parent_cpu:.2f} s)")
    print(f"evaluation, in this process: {in_process.seconds:.2f} s (policy {in_process.policy_seconds:.2f} s); "
          f"{figures['in_process_over_stepping']:.2f}x stepping alone")
    print(f"Monte-Carlo critic check over the {steps} visited steps: {mc_s:.3f} s, "
          f"{figures['mc_check_over_eval']:.3f}x the evaluation (target <= {TARGETS['mc_check_over_eval']}; "
          f"compiled once in {mc_compile_s:.2f} s)")
    print(f"per-episode results identical (pool, in-process, replay): {'yes' if identical else 'NO'}; "
          f"score {figures['score']:.2f}, mean length {figures['mean_length']:.0f}")
    print(json.dumps(figures))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    if not identical:
        sys.exit("the three paths gave different per-episode results")


if __name__ == "__main__":
    main()
