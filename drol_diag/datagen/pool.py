"""Running every episode of a generation plan: episodes in contiguous chunks, in this process or across 'spawn'
worker processes (which ignore Ctrl-C: the parent terminates the pool), with a progress callback per finished
chunk. The result does not depend on the number of workers (see drol_diag.datagen.episodes)."""

from __future__ import annotations

import math
import multiprocessing
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from drol_diag.datagen.episodes import EpisodeStats, ManipulationEpisodes, MazeEpisodes, Rows, make_episode_runner
from drol_diag.datagen.recipes import GenerationPlan


@dataclass
class Chunk:
    """Episodes start..stop-1: their rows, (stop - start) * episode_steps of each key, and their stats."""

    start: int
    stop: int
    arrays: dict[str, np.ndarray] = field(repr=False)
    stats: EpisodeStats


def run_chunk(runner: ManipulationEpisodes | MazeEpisodes, start: int, stop: int) -> Chunk:
    """Run episodes start..stop-1 with `runner` into fresh arrays."""
    steps = runner.plan.episode_steps
    rows, stats = Rows((stop - start) * steps), EpisodeStats()
    for episode in range(start, stop):
        stats.add(runner.run(episode, rows, (episode - start) * steps))
    return Chunk(start, stop, rows.arrays, stats)


_WORKER_RUNNER = None  # a worker process's episode driver (built once by _init_worker)


def _init_worker(plan: GenerationPlan) -> None:
    global _WORKER_RUNNER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which terminates the pool
    _quiet_gymnasium()
    _WORKER_RUNNER = make_episode_runner(plan)


def _worker_chunk(bounds: tuple[int, int]) -> Chunk:
    return run_chunk(_WORKER_RUNNER, *bounds)


def _quiet_gymnasium() -> None:
    # ogbench's manipulation action space has float64 bounds that gymnasium casts to float32 (same values)
    warnings.filterwarnings("ignore", message=r".*precision lowered by casting to float32.*")


def chunk_bounds(total: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous episode ranges: about 8 per worker (load balance, progress), at most 4 episodes each (the
    last one runs alone: a few seconds)."""
    size = max(1, min(4, math.ceil(total / (8 * workers))))
    return [(start, min(start + size, total)) for start in range(0, total, size)]


@dataclass(frozen=True)
class Progress:
    """What `generate_arrays` passes to its on_progress callback after each finished chunk."""

    episodes_done: int  # episodes finished so far (any order)
    rows_done: int  # their rows
    seconds: float  # since the generation started (worker start-up included)


def generate_arrays(plan: GenerationPlan, workers: int = 1,
                    on_progress: Callable[[Progress], None] | None = None,
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], EpisodeStats]:
    """Run every episode of the plan: (train arrays, validation arrays, stats), episodes * episode_steps rows
    each (keys: drol_diag.datagen.episodes). workers == 1 runs here (numpy's global state restored after)."""
    if workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {workers}")
    steps = plan.episode_steps
    bounds = chunk_bounds(plan.total_episodes, workers)
    arrays: dict[str, np.ndarray] = {}
    stats = EpisodeStats()
    started = time.perf_counter()
    episodes_done = 0

    def collect(chunks: Iterator[Chunk]) -> None:
        nonlocal episodes_done
        for chunk in chunks:
            if not arrays:
                for key, part in chunk.arrays.items():
                    arrays[key] = np.empty((plan.total_rows, *part.shape[1:]), part.dtype)
            for key, part in chunk.arrays.items():
                arrays[key][chunk.start * steps: chunk.stop * steps] = part
            stats.add(chunk.stats)
            episodes_done += chunk.stop - chunk.start
            if on_progress:
                on_progress(Progress(episodes_done, episodes_done * steps, time.perf_counter() - started))

    if workers == 1 or len(bounds) == 1:
        saved_state = np.random.get_state()
        try:
            with warnings.catch_warnings():
                _quiet_gymnasium()
                runner = make_episode_runner(plan)
                collect(run_chunk(runner, start, stop) for start, stop in bounds)
        finally:
            np.random.set_state(saved_state)
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(workers, len(bounds)), initializer=_init_worker, initargs=(plan,)) as pool:
            collect(pool.imap_unordered(_worker_chunk, bounds))  # leaving the block terminates the workers
    split = plan.train_episodes * steps
    return ({key: value[:split] for key, value in arrays.items()},
            {key: value[split:] for key, value in arrays.items()}, stats)
