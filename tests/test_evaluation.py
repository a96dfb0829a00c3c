"""Episode evaluation in worker processes (drol_diag.tasks.episodes.EpisodeEvaluator): the same per-episode results
as in-process stepping, one batch shape for the policy, clear errors, and no worker left behind."""

from __future__ import annotations

import functools
import gc
import os
import signal
import subprocess
import sys
import textwrap

import gymnasium
import numpy as np
import pytest

from drol_diag.tasks.episodes import EnvWorkerError, EpisodeEvaluator, episode_seed, evaluate_episodes
from tests.helpers import WAIT_S, StreamWatch, alive, wait_until_gone

NUM_EPISODES, NUM_ENVS = 10, 4  # three waves (4, 4, 2) of toy episodes
CRASH_ACTION = 0.95  # a ToyEnv stepped with an action above this fails (how, set by its `crash`)


class ToyEnv(gymnasium.Env):
    """An episode lasts 1..7 steps (drawn at reset); reward = the action; success if the last action is positive.
    Observation: (remaining steps, last action, an offset drawn at reset)."""

    observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (3,), np.float64)
    action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, crash: str = "raise"):
        self.crash = crash  # "raise": step raises ValueError; "exit": the process exits with status 7

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.remaining, self.offset = int(self.np_random.integers(1, 8)), float(self.np_random.normal())
        return np.array([self.remaining, 0.0, self.offset]), {}

    def step(self, action):
        if action[0] > CRASH_ACTION:
            if self.crash == "exit":
                os._exit(7)
            raise ValueError(f"boom at remaining {self.remaining}")
        self.remaining -= 1
        done = self.remaining == 0
        return np.array([self.remaining, action[0], self.offset]), float(action[0]), done, False, {"success": done and action[0] > 0}


def make_toy_env(crash: str = "raise") -> gymnasium.Env:
    return gymnasium.wrappers.TimeLimit(ToyEnv(crash), max_episode_steps=5)


def row_dependent_policy(observations: np.ndarray) -> np.ndarray:
    """Actions in (-0.9, 0.9) that depend on the observation and on the row (a slot mix-up changes them)."""
    rows = np.arange(len(observations))[:, None]
    return 0.9 * np.tanh(observations[:, :1] * 0.3 + observations[:, 2:3] + 0.1 * rows)


@pytest.fixture(scope="module")
def pooled():
    """A toy evaluator with 2 workers, shared by the tests that leave it healthy."""
    with EpisodeEvaluator(make_toy_env, workers=2, num_envs=NUM_ENVS) as evaluator:
        yield evaluator


def test_pool_gives_the_in_process_results_per_episode(pooled):
    in_process = EpisodeEvaluator(make_toy_env, workers=0, num_envs=NUM_ENVS).run(row_dependent_policy, NUM_EPISODES, 3)
    durations = np.array([make_toy_env().reset(seed=episode_seed(3, i))[0][0] for i in range(NUM_EPISODES)])
    np.testing.assert_array_equal(in_process.lengths, np.minimum(durations, 5))  # the TimeLimit cuts at 5
    assert 0 < in_process.successes.sum() < NUM_EPISODES  # a mix of outcomes, so a mix-up would show
    with EpisodeEvaluator(make_toy_env, workers=3, num_envs=NUM_ENVS) as uneven:  # 4 slots over 3 workers
        for evaluator in (pooled, pooled, uneven):  # the second evaluation reuses the workers' environments
            results = evaluator.run(row_dependent_policy, NUM_EPISODES, 3)
            for name in ("successes", "returns", "lengths"):
                np.testing.assert_array_equal(getattr(results, name), getattr(in_process, name), err_msg=name)
            for name in ("observations", "actions", "rewards", "episodes", "terminated"):
                np.testing.assert_array_equal(getattr(results.visited, name), getattr(in_process.visited, name))
        assert len(uneven.worker_pids) == 3
    # Every step, episode by episode: what the Monte-Carlo critic check reads (diagnostics.montecarlo).
    visited = in_process.visited
    np.testing.assert_array_equal(np.bincount(visited.episodes), in_process.lengths)
    np.testing.assert_allclose(np.bincount(visited.episodes, weights=visited.rewards), in_process.returns)
    np.testing.assert_array_equal(visited.observations[:, 0], np.concatenate(  # remaining steps, counting down
        [np.arange(d, d - n, -1) for d, n in zip(durations, in_process.lengths)]))
    ends = np.cumsum(in_process.lengths) - 1  # terminated at an episode's last step unless the TimeLimit cut it
    np.testing.assert_array_equal(visited.terminated[ends], durations <= 5)
    assert visited.terminated.sum() == (durations <= 5).sum()


def test_real_environment_in_workers_matches_in_process():
    import ogbench

    make_env = functools.partial(ogbench.make_env_and_datasets, "cube-single-play-singletask-task1-v0",
                                 env_only=True, max_episode_steps=25)
    weights = np.random.default_rng(0).normal(size=(28, 5)).astype(np.float32)
    seen: dict[int, list[np.ndarray]] = {0: [], 2: []}  # workers -> the policy's input at every step

    for workers in seen:
        def policy(observations: np.ndarray, workers=workers) -> np.ndarray:
            seen[workers].append(observations)
            return np.tanh(observations @ weights)

        with EpisodeEvaluator(make_env, workers=workers) as evaluator:
            results = evaluator.run(policy, 2, 1)
        assert (results.lengths == 25).all()
    assert len(seen[0]) == 25 and not np.array_equal(seen[0][-1][0], seen[0][-1][1])  # two different episodes
    np.testing.assert_array_equal(np.stack(seen[2]), np.stack(seen[0]))  # the same states, step by step


@pytest.mark.parametrize("workers", [0, 2])
def test_policy_sees_one_batch_shape(workers, pooled):
    shapes: set[tuple[int, ...]] = set()
    calls = 0

    def recording_policy(observations: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        shapes.add(observations.shape)
        assert observations.dtype == np.float32
        return row_dependent_policy(observations)

    evaluator = pooled if workers else EpisodeEvaluator(make_toy_env, num_envs=NUM_ENVS)
    results = evaluator.run(recording_policy, NUM_EPISODES, 5)
    waves = [results.lengths[start:start + NUM_ENVS] for start in range(0, NUM_EPISODES, NUM_ENVS)]
    assert len(set(results.lengths)) > 1  # episodes end at different steps: running batches would shrink
    assert calls == sum(max(wave) for wave in waves)  # once per step of each wave, all episodes together
    assert shapes == {(NUM_ENVS, 3)}  # padded to the number of environments, the last wave's 2 episodes too


def test_jitted_policy_compiles_once():
    import jax
    import jax.numpy as jnp

    act = jax.jit(lambda observations: 0.5 * jnp.tanh(observations[:, :1]))
    for seed in (0, 1):  # several evaluations with different episode lengths
        evaluate_episodes(make_toy_env, lambda observations: np.asarray(act(observations)), NUM_EPISODES, seed,
                          num_envs=NUM_ENVS)
    assert act._cache_size() == 1


@pytest.mark.parametrize("workers", [0, 2])
def test_wrong_action_shape_is_a_clear_error(workers, pooled):
    evaluator = pooled if workers else EpisodeEvaluator(make_toy_env, num_envs=NUM_ENVS)
    with pytest.raises(ValueError, match=r"^policy returned actions of shape \(3, 2\) for 4 observations; "
                                         r"expected \(4, 1\)$"):
        evaluator.run(lambda observations: np.zeros((3, 2)), NUM_EPISODES, 0)
    assert evaluator.run(row_dependent_policy, NUM_EPISODES, 3).lengths.sum() > 0  # still usable
    if workers:
        assert len(evaluator.worker_pids) == 2  # the pool survived: no message was in flight


@pytest.mark.parametrize("crash, message", [
    ("raise", r"environment worker 1 \(pid \d+\) raised ValueError: boom at remaining \d during step; "),
    ("exit", r"environment worker 1 \(pid \d+\) exited with code 7 during step; "),
])
def test_worker_crash_is_a_clear_error(crash, message):
    def crash_in_slot_1(observations: np.ndarray) -> np.ndarray:
        actions = np.zeros((len(observations), 1))
        actions[1] = 1.0  # slot 1 lives in worker 1
        return actions

    with EpisodeEvaluator(functools.partial(make_toy_env, crash), workers=2, num_envs=NUM_ENVS) as evaluator:
        evaluator.prepare(NUM_ENVS)
        pids = evaluator.worker_pids
        with pytest.raises(EnvWorkerError, match=message) as error:
            evaluator.run(crash_in_slot_1, NUM_EPISODES, 0)
        if crash == "raise":
            assert "ValueError: boom" in str(error.value.__cause__)  # the worker's traceback
        assert evaluator.worker_pids == [] and wait_until_gone(pids) == []  # the whole pool is shut down
        assert evaluator.run(row_dependent_policy, 2, 0).lengths.min() >= 1  # the next evaluation starts a new one


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="make_env must be picklable .* or workers=0"):
        EpisodeEvaluator(lambda: make_toy_env(), workers=2)
    with pytest.raises(ValueError, match="workers is -1; use 0"):
        EpisodeEvaluator(make_toy_env, workers=-1)
    with pytest.raises(ValueError, match="num_episodes is 0; at least 1"):
        EpisodeEvaluator(make_toy_env).run(row_dependent_policy, 0, 0)


def test_workers_stop_on_close_and_when_the_task_is_collected():
    from drol_diag.tasks import Task  # (imports JAX: not at module level, which the workers import for ToyEnv)

    evaluator = EpisodeEvaluator(make_toy_env, workers=2, num_envs=NUM_ENVS)
    evaluator.run(row_dependent_policy, NUM_EPISODES, 0)
    pids = evaluator.worker_pids
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    evaluator.close()
    assert [pid for pid in pids if alive(pid)] == []  # close() waits for them

    task = Task("toy", {}, evaluate=EpisodeEvaluator(make_toy_env, workers=2, num_envs=NUM_ENVS))
    assert task.evaluate(row_dependent_policy, NUM_EPISODES, 0)["episodes"] == NUM_EPISODES
    pids = task.evaluate.worker_pids
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    del task
    gc.collect()
    assert [pid for pid in pids if alive(pid)] == []


EXIT_SCRIPT = textwrap.dedent("""
    import functools, os, signal, sys, threading, time
    import gymnasium, numpy as np
    from drol_diag.tasks.episodes import EpisodeEvaluator

    how = sys.argv[1]
    evaluator = EpisodeEvaluator(functools.partial(gymnasium.make, "Pendulum-v1"), workers=2)
    evaluator.prepare(20)
    print(*evaluator.worker_pids, flush=True)
    calls = 0

    def policy(observations):
        global calls
        calls += 1
        if how == "kill" and calls == 20:
            print("in the policy", flush=True)
            time.sleep(600)  # the test kills this process while the workers wait for actions
        return np.zeros((len(observations), 1))

    if how == "interrupt":  # Ctrl-C (the whole process group, workers included) while evaluating
        threading.Timer(0.5, os.killpg, (0, signal.SIGINT)).start()
        while True:
            evaluator(policy, 20, 0)
    evaluator(policy, 20, 0)
    print("finished", flush=True)  # "exit": leave without closing anything
""")


@pytest.mark.parametrize("how", ["exit", "interrupt", "kill"])
def test_no_worker_outlives_its_parent(how):
    process = subprocess.Popen([sys.executable, "-c", EXIT_SCRIPT, how], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)  # (its own process group, for the Ctrl-C)
    stdout, stderr = StreamWatch(process.stdout), StreamWatch(process.stderr)
    try:
        printed = stdout.wait_for(r"^(\d+) (\d+)\n")  # the workers' pids, once they are ready
        assert printed, (process.poll(), stderr.text)
        pids = [int(pid) for pid in printed.groups()]
        if how == "kill":
            assert stdout.wait_for("in the policy"), stderr.text  # the workers wait for actions
            process.kill()
        process.wait(WAIT_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    errors = stderr.finish()
    if how == "exit":
        assert process.returncode == 0 and "finished" in stdout.finish(), errors
    if how == "interrupt":
        assert "KeyboardInterrupt" in errors and errors.count("Traceback") == 1  # the parent's only
    assert wait_until_gone(pids) == []
