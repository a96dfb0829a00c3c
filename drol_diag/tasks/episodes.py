"""Evaluation by real episodes: several environments step together, so a batched policy is called
once per step for all running episodes (FQL's protocol: success = info['success'] at the last step).
The environments are kept between evaluations, in this process or in worker processes (OGBench's cost
most of a second to create); the numbers are the same either way.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import traceback
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import gymnasium
import numpy as np

from drol_diag.tasks.base import VISITED, Policy, Visited

EnvFactory = Callable[[], gymnasium.Env]
MAX_PARALLEL_ENVS = 50  # default number of environments stepping together
MAX_DEFAULT_WORKERS = 4  # default_workers() uses at most this many processes
WORKER_START_METHOD = "spawn"  # JAX is loaded in the parent: never fork it
WORKER_EXIT_TIMEOUT_S = 5.0  # close(): wait this long for a worker to exit before terminating it


def episode_seed(seed: int, episode: int) -> int:
    """Reset seed of episode `episode` of an evaluation with `seed` (deterministic, decorrelated)."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; every core where that is unknown)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers() -> int:
    """One worker per usable core, at most MAX_DEFAULT_WORKERS; 0 (in this process) on one core or in a daemon."""
    cores = usable_cores()
    if cores < 2 or multiprocessing.current_process().daemon:
        return 0
    return min(cores, MAX_DEFAULT_WORKERS)


@dataclass(frozen=True)
class EpisodeResults:
    """Per-episode outcomes of one evaluation (episode i was reset with episode_seed(seed, i))."""

    successes: np.ndarray  # (num_episodes,) float64: info['success'] at the episode's last step (0 if absent)
    returns: np.ndarray  # (num_episodes,) float64: sum of rewards
    lengths: np.ndarray  # (num_episodes,) int64: steps taken
    visited: Visited | None  # every step taken, episode by episode (None: not recorded)

    def summary(self) -> dict:
        """{score, success (both the mean success), return, length (means), episodes, VISITED: the steps}."""
        success = float(self.successes.mean())
        return {"score": success, "success": success, "return": float(self.returns.mean()),
                "length": float(self.lengths.mean()), "episodes": len(self.successes), VISITED: self.visited}


@dataclass(frozen=True)
class StepBatch:
    """What stepping n environments returned, row i for the i-th slot stepped."""

    observations: np.ndarray  # (n, obs_dim)
    rewards: np.ndarray  # (n,) float64
    terminated: np.ndarray  # (n,) bool
    truncated: np.ndarray  # (n,) bool
    successes: np.ndarray  # (n,) float64: info['success'] (0 if absent)


class EnvWorkerError(RuntimeError):
    """An environment worker process raised or died; its pool has been shut down."""


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process (shown as the cause)."""

    def __str__(self) -> str:
        return self.args[0]


class _EnvSlots:
    """Environments in this process, keyed by slot (the row of the policy's batch they fill)."""

    closed = False  # (the worker pool's flag; in-process environments are never shut down)

    def __init__(self, make_env: EnvFactory):
        self.make_env = make_env
        self.envs: dict[int, gymnasium.Env] = {}

    def make(self, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Create the missing environments of `slots`; returns the action bounds (low, high), each (action_dim,)."""
        for slot in slots:
            if slot not in self.envs:
                self.envs[slot] = self.make_env()
        space = self.envs[slots[0]].action_space
        return np.asarray(space.low), np.asarray(space.high)

    def reset(self, slots: Sequence[int], seeds: Sequence[int]) -> np.ndarray:
        """Reset each slot's environment with its seed; observations (n, obs_dim)."""
        return np.stack([self.envs[slot].reset(seed=int(seed))[0] for slot, seed in zip(slots, seeds)])

    def step(self, slots: Sequence[int], actions: np.ndarray) -> StepBatch:
        """Step each slot's environment with its row of `actions` (n, action_dim)."""
        outcomes = [self.envs[slot].step(action) for slot, action in zip(slots, actions)]
        return StepBatch(observations=np.stack([o[0] for o in outcomes]),
                         rewards=np.array([float(o[1]) for o in outcomes]),
                         terminated=np.array([bool(o[2]) for o in outcomes]),
                         truncated=np.array([bool(o[3]) for o in outcomes]),
                         successes=np.array([float(o[4].get("success", 0.0)) for o in outcomes]))

    def close(self) -> None:
        """Forget the environments (they are not closed: a `make_env` may hand out shared ones)."""
        self.envs = {}


def _env_worker(connection: Connection, make_env: EnvFactory) -> None:
    """A worker process: answers (command, *arguments) of _EnvSlots with ("ok", result) until ("close",) or
    EOF; an exception is sent back as ("error", line, traceback) and ends the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    slots = _EnvSlots(make_env)
    try:
        while True:
            try:
                command, *arguments = connection.recv()
            except (EOFError, OSError):  # the parent is gone
                return
            if command == "close":
                return
            try:
                answer = ("ok", getattr(slots, command)(*arguments))
            except Exception as error:  # noqa: BLE001  (reported to the parent, which raises EnvWorkerError)
                answer = ("error", f"{type(error).__name__}: {error}".splitlines()[0], traceback.format_exc())
            try:
                connection.send(answer)
            except OSError:  # the parent stopped listening (it is shutting the pool down)
                return
            if answer[0] == "error":
                return
    finally:
        for env in slots.envs.values():
            try:
                env.close()
            except Exception:  # noqa: BLE001  (exiting anyway)
                pass
        connection.close()


def _shutdown_workers(processes: list, connections: list[Connection]) -> None:
    """Ask every worker to exit, wait for it (terminate it after WORKER_EXIT_TIMEOUT_S), close the pipes."""
    for connection in connections:
        try:
            connection.send(("close",))
        except (OSError, ValueError):  # already gone or closed
            pass
        connection.close()  # a worker blocked on the pipe sees EOF and exits
    for process in processes:
        process.join(WORKER_EXIT_TIMEOUT_S)
        if process.is_alive():
            process.terminate()
            process.join(WORKER_EXIT_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join()
    processes.clear()
    connections.clear()


class _EnvWorkerPool:
    """The _EnvSlots interface, slot s living in worker s % len(workers); workers start at the first make()."""

    def __init__(self, make_env: EnvFactory, max_workers: int):
        self.make_env = make_env
        self.max_workers = max_workers
        self.processes: list = []
        self.connections: list[Connection] = []
        self.closed = False
        self._finalizer = weakref.finalize(self, _shutdown_workers, self.processes, self.connections)

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers (empty before the first make() and after close())."""
        return [process.pid for process in self.processes]

    def _start(self, count: int) -> None:
        context = multiprocessing.get_context(WORKER_START_METHOD)
        try:
            for index in range(count):
                parent_end, child_end = context.Pipe()
                process = context.Process(target=_env_worker, args=(child_end, self.make_env), daemon=True,
                                          name=f"drol-env-worker-{index}")
                self.connections.append(parent_end)
                process.start()
                self.processes.append(process)
                child_end.close()  # only the worker holds it now: its death shows as EOF here
        except BaseException:
            self.close()
            raise

    def _ask(self, requests: dict[int, tuple]) -> dict[int, Any]:
        """Send each worker its request, then collect every answer; any failure shuts the pool down."""
        try:
            for worker, request in requests.items():
                try:
                    self.connections[worker].send(request)
                except OSError:
                    raise self._died(worker, request[0]) from None
            answers = {}
            for worker, request in requests.items():
                try:
                    answer = self.connections[worker].recv()
                except (EOFError, OSError):
                    raise self._died(worker, request[0]) from None
                if answer[0] == "error":
                    raise EnvWorkerError(f"environment worker {worker} (pid {self.processes[worker].pid}) raised "
                                         f"{answer[1]} during {request[0]}; the worker pool is shut down"
                                         ) from _RemoteTraceback(answer[2])
                answers[worker] = answer[1]
            return answers
        except BaseException:
            self.close()
            raise

    def _died(self, worker: int, command: str) -> EnvWorkerError:
        process = self.processes[worker]
        process.join(1.0)  # (its exit code, if it has exited)
        return EnvWorkerError(f"environment worker {worker} (pid {process.pid}) exited with code {process.exitcode} "
                              f"during {command}; the worker pool is shut down")

    def _by_worker(self, slots: np.ndarray) -> dict[int, np.ndarray]:
        """Positions in `slots` of each worker's slots (workers without any are left out)."""
        owners = slots % len(self.processes)
        return {worker: np.flatnonzero(owners == worker) for worker in range(len(self.processes))
                if (owners == worker).any()}

    def make(self, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        if self.closed:
            raise EnvWorkerError("the environment worker pool is shut down")
        if not self.processes:
            self._start(min(self.max_workers, len(slots)))
        slots = np.asarray(slots)
        parts = self._by_worker(slots)
        answers = self._ask({worker: ("make", slots[at].tolist()) for worker, at in parts.items()})
        return answers[next(iter(parts))]

    def reset(self, slots: Sequence[int], seeds: Sequence[int]) -> np.ndarray:
        slots, seeds = np.asarray(slots), np.asarray(seeds)
        parts = self._by_worker(slots)
        answers = self._ask({worker: ("reset", slots[at].tolist(), seeds[at].tolist()) for worker, at in parts.items()})
        observations = np.empty((len(slots), *answers[next(iter(parts))].shape[1:]), answers[next(iter(parts))].dtype)
        for worker, at in parts.items():
            observations[at] = answers[worker]
        return observations

    def step(self, slots: Sequence[int], actions: np.ndarray) -> StepBatch:
        slots = np.asarray(slots)
        parts = self._by_worker(slots)
        answers = self._ask({worker: ("step", slots[at].tolist(), actions[at]) for worker, at in parts.items()})
        first = answers[next(iter(parts))]
        merged = {name: np.empty((len(slots), *getattr(first, name).shape[1:]), getattr(first, name).dtype)
                  for name in ("observations", "rewards", "terminated", "truncated", "successes")}
        for worker, at in parts.items():
            for name, array in merged.items():
                array[at] = getattr(answers[worker], name)
        return StepBatch(**merged)

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        self.closed = True
        self._finalizer()


class EpisodeEvaluator:
    """Runs evaluation episodes on environments it keeps for later evaluations (Task.evaluate when called).

    With `workers` > 0 the environments live in up to that many 'spawn' worker processes (so `make_env`
    must pickle); with 0 they step in this process. A worker that raises or dies raises EnvWorkerError and
    shuts its pool down; the next evaluation starts a fresh one.
    """

    def __init__(self, make_env: EnvFactory, workers: int = 0, num_envs: int | None = None):
        if workers < 0:
            raise ValueError(f"workers is {workers}; use 0 (step in this process) or a positive number of processes")
        if num_envs is not None and num_envs < 1:
            raise ValueError(f"num_envs is {num_envs}; at least 1 environment is needed")
        if workers > 0:
            try:
                pickle.dumps(make_env)
            except Exception as error:
                raise ValueError(f"make_env must be picklable to build environments in worker processes ({error}); "
                                 "pass functools.partial of a module-level function, or workers=0") from error
        self.make_env = make_env
        self.workers = workers
        self.num_envs = num_envs or MAX_PARALLEL_ENVS  # environments stepping together (at most)
        self._envs: _EnvSlots | _EnvWorkerPool | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled or copied without its environments or workers: the copy builds its own."""
        return {**self.__dict__, "_envs": None}

    def __enter__(self) -> EpisodeEvaluator:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (in-process environments are forgotten, not closed)."""
        if self._envs is not None:
            self._envs.close()
            self._envs = None

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the running workers (empty in-process, before the first evaluation and after close)."""
        return self._envs.pids if isinstance(self._envs, _EnvWorkerPool) else []

    def envs_for(self, num_episodes: int) -> int:
        """How many environments step together for `num_episodes` episodes: the policy's batch size."""
        return min(num_episodes, self.num_envs)

    def prepare(self, num_envs: int) -> tuple[np.ndarray, np.ndarray]:
        """Create the environments of slots 0..num_envs-1 now; returns the action bounds (low, high), (action_dim,)."""
        if self._envs is None or self._envs.closed:
            self._envs = _EnvWorkerPool(self.make_env, self.workers) if self.workers else _EnvSlots(self.make_env)
        return self._envs.make(range(num_envs))

    def __call__(self, policy: Policy, num_episodes: int, seed: int) -> dict[str, float]:
        """Run the episodes (see `run`) and return EpisodeResults.summary()."""
        return self.run(policy, num_episodes, seed).summary()

    def run(self, policy: Policy, num_episodes: int, seed: int) -> EpisodeResults:
        """Run `num_episodes` episodes, `envs_for(num_episodes)` at a time.

        The policy always gets (num_envs, obs_dim) float32, so it compiles once: rows of ended episodes
        hold their last observation and their actions (num_envs, action_dim) are dropped. Episode i runs
        in slot i % num_envs, reset with `episode_seed(seed, i)`, until terminated or truncated.
        """
        if num_episodes < 1:
            raise ValueError(f"num_episodes is {num_episodes}; at least 1 episode is needed")
        num_envs = self.envs_for(num_episodes)
        action_low, action_high = self.prepare(num_envs)
        successes = np.zeros(num_episodes)  # (num_episodes,)
        returns = np.zeros(num_episodes)
        lengths = np.zeros(num_episodes, dtype=np.int64)
        observations: np.ndarray | None = None  # (num_envs, obs_dim), the policy's input
        steps: list[tuple] = []  # per environment step: (episodes, observations, actions, rewards, terminated)

        for wave_start in range(0, num_episodes, num_envs):
            episodes = np.arange(wave_start, min(wave_start + num_envs, num_episodes))  # slot s runs episodes[s]
            running = np.arange(len(episodes))  # slots whose episode is still running
            first = self._envs.reset(running, [episode_seed(seed, int(e)) for e in episodes])
            if observations is None:
                observations = np.zeros((num_envs, *first.shape[1:]), np.float32)
            observations[running] = first
            while running.size:
                actions = np.asarray(policy(observations.copy()), dtype=np.float32)
                if actions.shape != (num_envs, *action_low.shape):
                    raise ValueError(f"policy returned actions of shape {actions.shape} for {num_envs} observations; "
                                     f"expected {(num_envs, *action_low.shape)}")
                taken = np.clip(actions[running], action_low, action_high)
                stepped = self._envs.step(running, taken)
                steps.append((episodes[running], observations[running], taken, stepped.rewards, stepped.terminated))
                observations[running] = stepped.observations
                returns[episodes[running]] += stepped.rewards
                lengths[episodes[running]] += 1
                ended = stepped.terminated | stepped.truncated
                successes[episodes[running[ended]]] = stepped.successes[ended]
                running = running[~ended]

        step_episodes, step_observations, step_actions, step_rewards, step_terminated = (
            np.concatenate(column) for column in zip(*steps))
        order = np.argsort(step_episodes, kind="stable")  # episode by episode, each in its time order
        visited = Visited(observations=step_observations[order].astype(np.float32),
                          actions=step_actions[order].astype(np.float32), rewards=step_rewards[order],
                          episodes=step_episodes[order].astype(np.int64), terminated=step_terminated[order])
        return EpisodeResults(successes=successes, returns=returns, lengths=lengths, visited=visited)


def evaluate_episodes(make_env: EnvFactory, policy: Policy, num_episodes: int, seed: int,
                      num_envs: int | None = None, workers: int = 0) -> dict[str, float]:
    """One evaluation (EpisodeResults.summary()) on fresh environments, the workers then stopped."""
    with EpisodeEvaluator(make_env, workers=workers, num_envs=num_envs) as evaluator:
        return evaluator(policy, num_episodes, seed)
