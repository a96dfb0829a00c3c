"""Training throughput of the DROL learner against the machine's float32 matmul peak.

    python benchmarks/throughput.py [--quick] [--json PATH]

Measures, on synthetic data with the OGBench manipulation shapes (obs 28, action 5):
updates/s at the paper configuration (4x512, batch 256, K 16) for 1 seed and 4 seeds vmapped,
and at a small configuration (4x64); the analytic FLOPs of one update; the achieved GFLOP/s;
and that as a fraction of a float32 matmul peak measured in the same run. Compilation is
excluded (each configuration is compiled and run once before timing).

Targets from the trainer issue (reference implementation on this 2-core CPU: 1.3 updates/s at
the paper configuration, 29 at 4x64): >= 20 updates/s at the paper configuration, >= 400 at
4x64, >= 60% of the matmul peak.
"""

from __future__ import annotations

import argparse
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

from drol.config import DROLConfig  # noqa: E402
from drol.learner import Learner, make_init, make_train_chunk  # noqa: E402

OBS_DIM, ACTION_DIM = 28, 5  # cube-single-play shapes
PAPER_LOG_INTERVAL = 5_000  # the paper profile's log interval (drol.config.profile_settings)
TARGETS = {"paper_updates_per_s": 20.0, "small_updates_per_s": 400.0, "peak_fraction": 0.60}


def mlp_forward_flops(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> int:
    """Multiply-add FLOPs (2 per MAC) of one row through Dense layers in -> hidden... -> out."""
    widths = (in_dim, *hidden, out_dim)
    return 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def update_flops(config: DROLConfig, obs_dim: int, action_dim: int) -> int:
    """Matmul FLOPs of one DROL update on the fast path (backward = 2x forward; an input-only
    backward = 1x forward). Elementwise work (GELU, LayerNorm, Adam) is not counted.

    actor rows: B*K routing forwards + B next-action forwards + B winner forward and backward;
    critic rows per member: B target forwards + B forward and backward for the TD loss +
    B forward and input-backward for the actor's Q term.
    """
    b, k, e = config.batch_size, config.num_candidates, config.num_critics
    actor = mlp_forward_flops(obs_dim + action_dim, config.actor_hidden, action_dim)
    critic = mlp_forward_flops(obs_dim + action_dim, config.critic_hidden, 1)
    return actor * (b * k + b + 3 * b) + critic * e * (b + 3 * b + 2 * b)


def matmul_peak_gflops(repeats: int = 10, sizes: tuple[int, ...] = (1024, 2048), rows: int = 4096) -> float:
    """Best float32 GFLOP/s over a few large square-ish matmuls (rows x n times n x n for n in `sizes`), as
    XLA runs them here (at the process's matmul precision: on a GPU JAX's default may use TF32)."""
    best = 0.0
    for n in sizes:
        a = jax.random.normal(jax.random.PRNGKey(0), (rows, n))
        w = jax.random.normal(jax.random.PRNGKey(1), (n, n))
        matmul = jax.jit(lambda a, w: a @ w)
        matmul(a, w).block_until_ready()
        for _ in range(repeats):
            start = time.perf_counter()
            matmul(a, w).block_until_ready()
            best = max(best, 2 * rows * n * n / (time.perf_counter() - start) / 1e9)
    return best


def synthetic_dataset(n: int = 100_000) -> dict[str, jnp.ndarray]:
    rng = np.random.default_rng(0)
    return dict(observations=jnp.asarray(rng.normal(size=(n, OBS_DIM)), jnp.float32),
                actions=jnp.asarray(rng.uniform(-1, 1, (n, ACTION_DIM)), jnp.float32),
                rewards=jnp.asarray(rng.normal(size=n), jnp.float32),
                masks=jnp.ones(n, jnp.float32),
                next_observations=jnp.asarray(rng.normal(size=(n, OBS_DIM)), jnp.float32))


def measure(hidden: tuple[int, ...], num_seeds: int, chunk: int, repeats: int, transitions: int = 100_000,
            **fields) -> dict[str, float]:
    """Best-of-`repeats` updates/s (per seed) of compiled chunks of `chunk` updates (DROLConfig with `hidden`
    widths and `fields`, on `transitions` synthetic transitions). "program_bytes": the compiled chunk's
    arguments plus temporaries by XLA's buffer assignment (None where the backend does not say)."""
    config = DROLConfig(actor_hidden=hidden, critic_hidden=hidden, **fields)
    learner = Learner(config, OBS_DIM, ACTION_DIM)
    dataset = synthetic_dataset(transitions)
    states = make_init(learner)(jnp.arange(num_seeds))
    start = time.perf_counter()
    updates = np.int32(chunk)
    train_chunk = make_train_chunk(learner).lower(states, dataset, updates).compile()
    compile_s = time.perf_counter() - start
    analysis = train_chunk.memory_analysis()
    program_bytes = None if analysis is None else analysis.argument_size_in_bytes + analysis.temp_size_in_bytes
    states, metrics = train_chunk(states, dataset, updates)
    jax.block_until_ready(metrics)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        states, metrics = train_chunk(states, dataset, updates)
        jax.block_until_ready(metrics)
        best = max(best, chunk / (time.perf_counter() - start))
    flops = update_flops(config, OBS_DIM, ACTION_DIM)
    return {"hidden": "x".join(map(str, hidden)), "seeds": num_seeds, "updates_per_s": best,
            "seed_updates_per_s": best * num_seeds, "gflop_per_update": flops / 1e9,
            "gflops": best * num_seeds * flops / 1e9, "compile_s": compile_s, "program_bytes": program_bytes}


def measure_diagnostics(hidden: tuple[int, ...], num_seeds: int, transitions: int, log_interval: int,
                        updates_per_s: float, num_probes: int = 1024, **fields) -> dict[str, float]:
    """Seconds for one diagnostics row (`num_probes` probes per seed, support search over `transitions`
    pairs; DROLConfig with `hidden` widths and `fields`) and the throughput it leaves at `log_interval`
    updates between rows."""
    from diagnostics.hooks import ProbeRecorder
    from drol_diag.tasks import Task

    rng = np.random.default_rng(1)
    host = lambda n: dict(observations=rng.normal(size=(n, OBS_DIM)).astype(np.float32),
                          actions=rng.uniform(-1, 1, (n, ACTION_DIM)).astype(np.float32),
                          rewards=np.zeros(n, np.float32), masks=np.ones(n, np.float32),
                          next_observations=rng.normal(size=(n, OBS_DIM)).astype(np.float32))
    task = Task("synthetic", host(transitions), host(transitions // 10))
    config = DROLConfig(actor_hidden=hidden, critic_hidden=hidden, **fields)
    learner = Learner(config, OBS_DIM, ACTION_DIM)
    dataset = {k: jnp.asarray(v) for k, v in task.dataset.items()}
    states = make_init(learner)(jnp.arange(num_seeds))
    start = time.perf_counter()
    recorder = ProbeRecorder(learner, task, dataset, list(range(num_seeds)), num_probes)
    setup_s = time.perf_counter() - start
    recorder.row(states, 0)  # compiles
    start = time.perf_counter()
    recorder.row(states, 1)
    row_s = time.perf_counter() - start
    interval_s = log_interval / updates_per_s
    return {"row_s": row_s, "setup_s": setup_s, "log_interval": log_interval,
            "updates_per_s_with": log_interval / (interval_s + row_s), "overhead": row_s / interval_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a rough figure in ~1 minute)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5

    peak = matmul_peak_gflops()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
          f"({jax.default_backend()}), XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    print(f"float32 matmul peak (measured): {peak:.1f} GFLOP/s")
    rows = [measure((512,) * 4, 1, 10, repeats), measure((512,) * 4, 4, 5, repeats),
            measure((64,) * 4, 1, 300, repeats), measure((64,) * 4, 4, 150, repeats)]
    print(f"{'config':>8} {'seeds':>5} {'updates/s':>10} {'seed-upd/s':>10} {'GFLOP/upd':>9} {'GFLOP/s':>8} "
          f"{'of peak':>7} {'compile s':>9}")
    for row in rows:
        row["peak_fraction"] = row["gflops"] / peak
        print(f"{row['hidden']:>8} {row['seeds']:>5} {row['updates_per_s']:>10.2f} {row['seed_updates_per_s']:>10.2f} "
              f"{row['gflop_per_update']:>9.3f} {row['gflops']:>8.1f} {row['peak_fraction']:>7.0%} "
              f"{row['compile_s']:>9.1f}")

    paper, small = rows[0], rows[2]
    ceiling = peak / paper["gflop_per_update"]
    print(f"paper config: {paper['updates_per_s']:.2f} updates/s (target {TARGETS['paper_updates_per_s']:.0f}; "
          f"{paper['updates_per_s'] / 1.3:.1f}x the reference's 1.3); at 100% of the measured peak an update of "
          f"{paper['gflop_per_update']:.2f} GFLOP allows at most {ceiling:.1f} updates/s on this machine")
    print(f"4x64 config: {small['updates_per_s']:.1f} updates/s (target {TARGETS['small_updates_per_s']:.0f}; "
          f"{small['updates_per_s'] / 29:.1f}x the reference's 29)")
    print(f"paper config efficiency: {paper['peak_fraction']:.0%} of the measured matmul peak "
          f"(target {TARGETS['peak_fraction']:.0%})")

    diag = measure_diagnostics((512,) * 4, 1, 1_000_000, PAPER_LOG_INTERVAL, paper["updates_per_s"])
    print(f"diagnostics at the paper configuration (1M transitions, 1024 probes, one row every "
          f"{diag['log_interval']} updates): {diag['row_s']:.2f} s per row (setup {diag['setup_s']:.1f} s once); "
          f"training {paper['updates_per_s']:.2f} updates/s without, {diag['updates_per_s_with']:.2f} with "
          f"({diag['overhead']:.1%} slower; target <= 5%)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"matmul_peak_gflops": peak, "rows": rows, "diagnostics": diag, "targets": TARGETS}, f, indent=2)


if __name__ == "__main__":
    main()
