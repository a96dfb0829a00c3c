"""The ablation runner's speed targets.

    python benchmarks/ablations.py [--quick] [--json PATH]

1. Grouping: eight seeds trained together in one group (one `drol-diag run --seeds 0-7`: one
   process, one compilation, seeds vmapped) against eight single-seed runs one after another, at
   the small configuration (4x64) on the embedded modes-2d task, with diagnostics and
   evaluation on as a sweep runs them. Wall time of whole commands, start-up included.
   Target: the group finishes at least 2x faster.
2. Static-routing initialisation: the owner table over a 1M-transition dataset (OGBench
   manipulation shapes: obs 28, action 5) at the paper configuration (4x512, K 16), against the
   time of a 1M-update static-routing run at its measured update rate. Target: <= 10%.
3. The dry run's estimate: `sweep --dry-run`'s wall time against that of the sweep it plans, run
   next (modes-2d, dynamic and static-routing x K 2, 4, 3 seeds, 2x16, diagnostics and evaluation
   on; fresh folders and a fresh compilation cache, as a first sweep of new settings). Target: the
   measured wall time within a factor 1.5 of the planned one, either way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from drol_diag.platform import start_process  # noqa: E402

start_process()  # XLA:CPU flags and MUJOCO_GL before JAX and MuJoCo start
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.throughput import ACTION_DIM, OBS_DIM, synthetic_dataset  # noqa: E402
from drol.learner import Learner, make_init, make_train_chunk  # noqa: E402
from drol_diag.settings import resolve  # noqa: E402
from training.driver import static_owner_table  # noqa: E402

TARGETS = {"group_speedup": 2.0, "static_init_fraction": 0.10, "estimate_factor": 1.5}
SMALL = "64,64,64,64"


def timed_run(out: str, seeds: str, steps: int) -> float:
    """Wall seconds of one `drol-diag run` of modes-2d at 4x64 (a fresh process)."""
    command = [sys.executable, "-m", "cli", "run", "--task", "modes-2d", "--hidden", SMALL,
               "--seeds", seeds, "--steps", str(steps), "--log-interval", "500", "--eval-interval", "1000",
               "--checkpoint-interval", str(steps), "--out", out, "--force", "--no-progress"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def measure_grouping(steps: int) -> dict[str, float]:
    """Wall time of 8 seeds in one group vs 8 single-seed runs one after another."""
    with tempfile.TemporaryDirectory() as out:
        grouped = timed_run(out, "0-7", steps)
        single = [timed_run(out, str(seed), steps) for seed in range(8)]
    return {"steps": steps, "grouped_s": grouped, "sequential_s": sum(single), "single_run_s": single,
            "speedup": sum(single) / grouped}


ESTIMATE_SWEEP = ["--tasks", "modes-2d", "--ablations", "dynamic,static-routing", "--k", "2,4", "--seeds", "0-2",
                  "--hidden", "16,16", "--log-interval", "100", "--eval-interval", "250",
                  "--checkpoint-interval", "500", "--probes", "64"]
UNITS_S = {"s": 1, "min": 60, "h": 3600}  # ablations.tables.duration_text's units


def measure_estimate(steps: int) -> dict[str, float]:
    """The wall time `sweep --dry-run` plans for ESTIMATE_SWEEP and the wall time of that sweep, run next."""
    with tempfile.TemporaryDirectory() as folder:
        environment = {**{name: value for name, value in os.environ.items() if name != "JAX_COMPILATION_CACHE_DIR"},
                       "DROL_DIAG_COMPILE_CACHE": os.path.join(folder, "cache")}  # (start_process set the user's)
        command = [sys.executable, "-m", "cli", "sweep", *ESTIMATE_SWEEP, "--steps", str(steps),
                   "--out", os.path.join(folder, "runs"), "--no-progress"]
        plan = subprocess.run([*command, "--dry-run"], check=True, capture_output=True, text=True, env=environment)
        value, unit = re.search(r"about ([\d.]+) (s|min|h) wall", plan.stdout).groups()
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=environment)
        measured = time.perf_counter() - start
    planned = float(value) * UNITS_S[unit]
    return {"steps": steps, "planned_s": planned, "measured_s": measured, "ratio": measured / planned}


def measure_static_init(transitions: int, rate_chunk: int) -> dict[str, float]:
    """Seconds to build the static owner table over `transitions` at the paper configuration,
    and the static-routing update rate there (best of 3 compiled chunks)."""
    config, _ = resolve("cube-single-play-singletask-task1-v0", "paper", ablation="static-routing",
                        num_candidates=16)
    learner = Learner(config, OBS_DIM, ACTION_DIM, transitions)
    dataset = synthetic_dataset(transitions)
    states = make_init(learner)(jnp.arange(1))
    start = time.perf_counter()
    states = static_owner_table(learner, states, dataset, progress=True)
    jax.block_until_ready(states.owners)
    init_s = time.perf_counter() - start
    updates = jnp.int32(rate_chunk)
    chunk = make_train_chunk(learner).lower(states, dataset, updates).compile()
    states, metrics = chunk(states, dataset, updates)
    jax.block_until_ready(metrics)
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        states, metrics = chunk(states, dataset, updates)
        jax.block_until_ready(metrics)
        best = max(best, rate_chunk / (time.perf_counter() - start))
    run_s = 1_000_000 / best
    return {"transitions": transitions, "init_s": init_s, "updates_per_s": best, "run_1m_s": run_s,
            "fraction": init_s / run_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs and a 100k-transition table")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
          f"({jax.default_backend()})")

    grouping = measure_grouping(1000 if args.quick else 3000)
    print(f"grouping (modes-2d, 4x64, {grouping['steps']} updates, diagnostics and evaluation on): 8 seeds in one "
          f"group {grouping['grouped_s']:.1f} s; 8 single-seed runs one after another {grouping['sequential_s']:.1f} s "
          f"(each {min(grouping['single_run_s']):.1f}-{max(grouping['single_run_s']):.1f} s): "
          f"{grouping['speedup']:.2f}x faster grouped (target >= {TARGETS['group_speedup']:.0f}x)")

    static = measure_static_init(100_000 if args.quick else 1_000_000, 10)
    print(f"static-routing initialisation (4x512, K 16, {static['transitions']:,} transitions): "
          f"{static['init_s']:.1f} s; static-routing trains at {static['updates_per_s']:.2f} updates/s, so a 1M-update "
          f"run takes {static['run_1m_s'] / 3600:.1f} h: the initialisation is {static['fraction']:.2%} of it "
          f"(target <= {TARGETS['static_init_fraction']:.0%})")
    estimate = measure_estimate(1000 if args.quick else 3000)
    print(f"dry-run estimate (4 groups of modes-2d, 3 seeds, {estimate['steps']} updates, diagnostics and evaluation "
          f"on): planned {estimate['planned_s']:.0f} s, measured {estimate['measured_s']:.0f} s: measured / planned "
          f"{estimate['ratio']:.2f} (target within {TARGETS['estimate_factor']}x either way)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"grouping": grouping, "static_init": static, "estimate": estimate, "targets": TARGETS}, f,
                      indent=2)


if __name__ == "__main__":
    main()
