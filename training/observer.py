"""What the training loop (training.driver.run_chunks) hands its observers at every chunk end: the run log's
rows, evaluations, checkpoints, W&B and the progress bar each watch the chunks through this one interface.
Also the run's time breakdown (`Phases`): seconds per phase of the process, which the driver and the observers
accumulate and summary.json records."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

# Where a run's process time goes (summary.json's `phases`, in this order; they sum to its process wall time):
PHASES = ("startup",  # interpreter and imports, from the process's start (process_start) to the run command's imports
          "task",  # the task's data: loaded, and put on the device
          "density",  # the behaviour density: fitted or read from its cache (training.driver.run_density)
          "setup",  # checks, the run folder, learner, initial states, restore, static routing's owners, observers
          "compile_training",  # the training chunks' ahead-of-time compile, and what setup compiled (initial states)
          "compile_diagnostics",  # JAX's trace/lower/compile (or persistent-cache read) spans inside diagnostic rows
          "compile_evaluation",  # the same, inside evaluations
          "training",  # inside the compiled training chunks
          "diagnostics",  # diagnostic rows (and the probe recorder's set-up), their compilation excluded
          "evaluation",  # evaluations, their compilation excluded
          "writing",  # run-log appends and flushes, checkpoints, config.json
          "other")  # the rest: the process wall time less every phase above (progress bar, W&B, unaccounted)
COMPILED_IN = {"setup": "compile_training", "training": "compile_training", "diagnostics": "compile_diagnostics",
               "evaluation": "compile_evaluation"}  # phase -> where the JAX compilations inside it are counted
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")  # (the last includes a persistent-cache read)


def process_start() -> float | None:
    """This process's start on the time.perf_counter() clock, from Linux's /proc (/proc/self/stat's start time
    against /proc/uptime, both since boot, 10 ms resolution); None where /proc cannot say (not Linux)."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime (clock ticks after boot)
        with open("/proc/uptime") as f:
            age = float(f.read().split()[0]) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return time.perf_counter() - age if age >= 0 else None


@dataclass
class _Open:
    """A phase being timed: its start (perf_counter and wall clock), its nested phases' seconds, the JAX
    compilation spans (wall clock) that ended inside it."""

    name: str
    began: float
    wall_began: float
    inner: float = 0.0
    spans: list[tuple[float, float]] = field(default_factory=list)


_open: list[_Open] = []  # the phases being timed in this process, innermost last


def _compile_span(event: str, start: float, end: float, **_: Any) -> None:
    if event in COMPILE_EVENTS and _open:
        _open[-1].spans.append((max(start, _open[-1].wall_began), end))


jax.monitoring.register_event_time_span_listener(_compile_span)


def covered(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of (start, end) spans (a trace nests inside another's)."""
    total, reach = 0.0, -np.inf
    for start, end in sorted(spans):
        if end > reach:
            total, reach = total + end - max(start, reach), end
    return total


class Phases:
    """Seconds per phase (PHASES) of a process, from `start` (time.perf_counter(); default now).
    `with phases("name"):` adds the block's time to the phase, less the phases nested in it, and moves the JAX
    compilations it holds to its compile phase (COMPILED_IN); `add` adds seconds measured elsewhere."""

    def __init__(self, start: float | None = None):
        self.start = time.perf_counter() if start is None else start
        self.seconds = dict.fromkeys(PHASES, 0.0)

    @classmethod
    def since_process_start(cls) -> Phases:
        """From the process's start (process_start), or from now where that cannot be read."""
        return cls(process_start())

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] += seconds

    @contextlib.contextmanager
    def __call__(self, name: str):
        timed = _Open(name, time.perf_counter(), time.time())
        _open.append(timed)
        try:
            yield
        finally:
            _open.remove(timed)
            elapsed = time.perf_counter() - timed.began
            own = elapsed - timed.inner
            compiled = min(covered(timed.spans), own) if name in COMPILED_IN else 0.0
            self.seconds[name] += own - compiled
            if compiled:
                self.seconds[COMPILED_IN[name]] += compiled
            if _open:
                _open[-1].inner += elapsed

    def record(self) -> tuple[float, dict[str, float]]:
        """The process wall time so far and the seconds per phase, `other` the wall time no phase holds."""
        wall = self.elapsed()
        return wall, {**self.seconds, "other": max(0.0, wall - sum(s for n, s in self.seconds.items() if n != "other"))}


@dataclass
class Chunk:
    """The host's view at the end of one compiled chunk of updates (states stacked over the S seeds)."""

    step: int  # updates done per seed
    length: int  # updates in this chunk
    states: Any  # drol.learner.TrainState of every seed
    metrics: dict[str, np.ndarray]  # the chunk's means of the training metrics {name: (S,)}
    diverged: np.ndarray  # (S,) bool: the seed's losses became NaN/inf
    last: bool  # the run's last chunk (its last step, or every seed diverged)
    updates_per_s: float  # updates per second in the compiled chunks since this leg started
    rows: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # {row dim: row} logged at this step
    phases: Phases = field(default_factory=Phases)  # the run's time breakdown (an observer may time parts of its own)


class Observer:
    """Watches the chunks in the driver's order; `close` runs once at the end (`failed`: an exception ends it).
    The driver counts both calls' time in the observer's `phase` (PHASES)."""

    phase = "other"

    def on_chunk(self, chunk: Chunk) -> None: ...

    def close(self, failed: bool) -> None:
        pass
