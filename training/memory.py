"""The memory a run needs, estimated from its configs before anything is allocated, and what the device has:
the training arrays, support index and states, plus the largest program's working memory (rows x K candidates)
and the host's log. The formula and how close it comes to XLA's figures: docs/extending.md (benchmarks/memory.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from drol.config import LearnerConfig

if TYPE_CHECKING:
    from drol_diag.settings.resolve import RunConfig

FLOAT_BYTES = 4  # everything is float32 (owners int32)
OWNER_CHUNK_CANDIDATES = 1 << 16  # static routing's initial owner table: candidates per seed in one device call
SUPPORT_CHUNK_ROWS = 4096  # diagnostics.support.chunk_rows() at most: training pairs per distance matmul
# Floats XLA keeps, fitted to its buffer assignment (benchmarks/memory.py):
TRAINING_ROUTING_FACTOR = 2.0  # per unit of the widest actor layer, per candidate a training chunk routes
TRAINING_ROUTING_EXTRA = 150  # and per such candidate (its latent, action, distance, input, GELU temporaries)
PROBE_ROUTING_FACTOR = 1.5  # the same in a probe row, per pass over the candidates (refresh-N makes two)
ACTOR_FACTOR = 2.0  # per actor unit per trained candidate, forward and backward
CRITIC_FACTOR = 4.0  # per critic unit (each member, LayerNorm) per trained candidate, forward and backward
USABLE_FRACTION = 0.9  # of the available memory, a run's estimate may take; the rest: compiling, XLA's workspace
# The run's log, in host memory (drol_diag.runfolder.store.RunLog keeps every row until the run ends), counted
# generously from a modes-2d run (47 variables per row: 37 scalars, 7 per probe, K loads, layers, quantiles):
LOG_VALUE_BYTES = 8  # a logged value (some are float64 or int64)
LOG_ROW_VALUES = 64  # per row and seed, besides the K per-candidate and the per-probe values
LOG_PROBE_VALUES = 8  # per probe, per row and seed
EVAL_ROW_VALUES = 8  # per evaluation row and seed
LOG_COPIES = 2  # the rows held, and the copy of them each flush concatenates
CHUNK_END_BYTES = 80  # one end of a chunk in the driver's schedule (chunk_boundaries: a set and a list; 78 measured)
GIB = 1 << 30


def mlp_params(in_dim: int, hidden: tuple[int, ...], out_dim: int, layer_norm: bool = False) -> int:
    """Parameters of drol.networks.MLP: Dense kernels and biases (and LayerNorm scales and biases)."""
    sizes = (in_dim, *hidden, out_dim)
    dense = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return dense + (2 * sum(hidden) if layer_norm else 0)


def state_bytes(config: LearnerConfig, obs_dim: int, action_dim: int, num_transitions: int) -> int:
    """One seed's training state: parameters and Adam moments, target critic, refresh-N's snapshot, owners (N,)."""
    actor = mlp_params(obs_dim + action_dim, config.actor_hidden, action_dim)
    critic = config.num_critics * mlp_params(obs_dim + action_dim, config.critic_hidden, 1, layer_norm=True)
    floats = 3 * actor + 4 * critic
    if config.method == "fql":
        floats += 3 * mlp_params(obs_dim + action_dim + 1, config.actor_hidden, action_dim)  # the flow
    else:
        floats += actor if config.refresh_interval > 1 else 0
        floats += num_transitions if config.refresh_interval == 0 else 0
    return FLOAT_BYTES * floats


def working_bytes(config: LearnerConfig, rows: int, routing_factor: float, routing_extra: float = 0.0) -> int:
    """One seed's working memory for `rows` states (the batch, or the probes), with `routing_factor` floats per
    unit of the widest actor layer plus `routing_extra` per candidate routed (0: none)."""
    actor, critic = sum(config.actor_hidden), config.num_critics * sum(config.critic_hidden)
    if config.method == "fql":  # (the flow counts as a second actor)
        return int(FLOAT_BYTES * rows * (2 * ACTOR_FACTOR * actor + CRITIC_FACTOR * critic))
    k = config.num_candidates
    trained = k if config.routing in ("soft", "uniform") else 1
    routing = k * (routing_factor * max(config.actor_hidden) + routing_extra) if routing_factor else 0.0
    floats = routing + trained * (ACTOR_FACTOR * actor + CRITIC_FACTOR * critic)
    return int(FLOAT_BYTES * rows * floats)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs on its device, by part (each for all seeds)."""

    dataset: int  # the training arrays, and the support index when the diagnostics run
    states: int  # every seed's training state
    training: int  # working memory of a training chunk
    diagnostics: int  # working memory of a row of probe diagnostics (0 without diagnostics)
    owner_table: int  # working memory of static routing's owner table (0 for other routings)
    log: int = 0  # the log's rows and the schedule of chunks (host memory; counted on an accelerator too)

    @property
    def total(self) -> int:
        """What is held at the peak: the arrays, the states, the log and the largest program's working memory."""
        return self.dataset + self.states + self.log + max(self.training, self.diagnostics, self.owner_table)

    def explain(self, available: int) -> str:
        """Each part that alone needs more than `available` bytes (else the largest), with what lowers it."""
        sizes = {name: getattr(self, name) for name in PARTS}
        ordered = sorted(sizes, key=lambda name: sizes[name], reverse=True)
        over = [name for name in ordered if sizes[name] > available] or ordered[:1]
        return ", ".join(f"{PARTS[name][0]} needs {sizes[name] / GIB:.1f} GiB ({PARTS[name][1]})" for name in over) \
            + "; or run fewer --seeds at once"


PARTS = {  # MemoryEstimate's fields: what each is, and what lowers it
    "training": ("a training chunk", "lower --k, --batch-size or --hidden"),
    "diagnostics": ("a row of probe diagnostics", "lower --probes or --k, or pass --no-diagnostics"),
    "owner_table": ("static routing's owner table", "lower --k or --hidden"),
    "states": ("the training states", "lower --hidden"),
    "dataset": ("the dataset", "use a smaller dataset, or pass --no-diagnostics"),
    "log": ("the run's log (every row is kept until the run ends)", "lower --steps, raise --log-interval and "
            "--eval-interval, or lower --probes"),
}


def log_bytes(config: LearnerConfig, run: RunConfig, num_seeds: int, num_probes: int) -> int:
    """The log's rows and the schedule of chunk ends of `run`, for `num_seeds` seeds and `num_probes` probes each."""
    rows, evaluations = run.steps // run.log_interval + 1, run.steps // run.eval_interval + 1
    values = rows * (LOG_ROW_VALUES + config.num_candidates + LOG_PROBE_VALUES * num_probes) + \
        evaluations * EVAL_ROW_VALUES
    chunk_ends = rows + evaluations + run.steps // run.checkpoint_interval
    return LOG_COPIES * LOG_VALUE_BYTES * num_seeds * values + CHUNK_END_BYTES * chunk_ends


def estimate_memory(config: LearnerConfig, obs_dim: int, action_dim: int, num_transitions: int, num_seeds: int,
                    num_probes: int = 0, run: RunConfig | None = None) -> MemoryEstimate:
    """The memory a run of `config` needs for `num_seeds` seeds on `num_transitions` rows, with `num_probes`
    probes per seed (0: no diagnostics), and with `run` its log (None: arrays and programs only)."""
    dataset = FLOAT_BYTES * num_transitions * (2 * obs_dim + action_dim + 2)
    probes = min(num_probes, num_transitions)
    diagnostics = 0
    if probes:
        dataset += FLOAT_BYTES * num_transitions * (obs_dim + action_dim)  # the support index
        passes = 0 if config.method == "fql" else 2 if config.refresh_interval > 1 else 1
        pairwise = 0 if config.method == "fql" else probes * config.num_candidates ** 2  # candidate_spread: (M, K, K)
        diagnostics = num_seeds * (working_bytes(config, probes, passes * PROBE_ROUTING_FACTOR)
                                   + FLOAT_BYTES * pairwise + 2 * FLOAT_BYTES * probes * SUPPORT_CHUNK_ROWS)
    state = state_bytes(config, obs_dim, action_dim, num_transitions)
    routes_in_training = config.method != "fql" and config.routing != "random" and config.refresh_interval != 0
    training = num_seeds * (state + working_bytes(config, config.batch_size,
                                                  TRAINING_ROUTING_FACTOR if routes_in_training else 0.0,
                                                  TRAINING_ROUTING_EXTRA))
    owner_table = 0
    if config.method != "fql" and config.refresh_interval == 0:
        candidates = max(1, min(num_transitions, OWNER_CHUNK_CANDIDATES // config.num_candidates)) * \
            config.num_candidates
        owner_table = int(num_seeds * FLOAT_BYTES * candidates *
                          (TRAINING_ROUTING_FACTOR * max(config.actor_hidden) + TRAINING_ROUTING_EXTRA))
    log = log_bytes(config, run, num_seeds, probes) if run is not None else 0
    return MemoryEstimate(dataset, num_seeds * state, training, diagnostics, owner_table, log)


def known_task_shape(task: str) -> tuple[int, int, int]:
    """(obs_dim, action_dim, transitions) of a task without loading it: exact for the embedded tasks, else
    (1, 1, 0), a lower bound for a sweep's planner (each run checks again, exactly)."""
    from drol_diag.tasks.registry import synthetic_spec

    spec = synthetic_spec(task)
    return (spec.obs_dim, spec.action_dim, spec.num_transitions) if spec else (1, 1, 0)


# ------------------------------------------------------------------------------------------
# What the device has.


def host_available_bytes() -> int:
    """Memory this host can give a process now: MemAvailable, no more than a cgroup v2 limit leaves."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(available, 0)


def device_memory() -> tuple[int, str]:
    """(bytes available, what they are) on JAX's default device (on the CPU, the host's). Starts JAX's backend."""
    import jax

    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return free, f"free on {device.device_kind} ({device.platform})"
    return host_available_bytes(), "available on this host (CPU)"


PROBE = ("import os; os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'] = 'false'; "
         "from training.memory import device_memory; print(*device_memory(), sep='\\t')")


def device_memory_elsewhere() -> tuple[int, str]:
    """device_memory() without starting JAX's backend here (a sweep's planner must not take an accelerator's
    memory from its runs): a short-lived child process asks, where JAX has an accelerator plugin."""
    import importlib.metadata

    platforms = os.environ.get("JAX_PLATFORMS", "")
    plugins = list(importlib.metadata.entry_points(group="jax_plugins"))
    if platforms == "cpu" or (not platforms and not plugins):
        return host_available_bytes(), "available on this host (CPU)"
    try:
        answer = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120,
                                check=True).stdout.strip().splitlines()[-1]
        size, what = answer.split("\t")
        return int(size), what
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return host_available_bytes(), "available on this host"


def check_fits(estimate: MemoryEstimate, available: tuple[int, str], what: str) -> None:
    """Raise ValueError (one line, with what to change) when the estimate exceeds USABLE_FRACTION of `available`."""
    size, where = available
    if estimate.total > USABLE_FRACTION * size:
        raise ValueError(f"{what} needs about {estimate.total / GIB:.1f} GiB of memory, more than "
                         f"{USABLE_FRACTION:.0%} of the {size / GIB:.1f} GiB {where}: "
                         f"{estimate.explain(int(USABLE_FRACTION * size))}")
