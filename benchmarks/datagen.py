"""Dataset generation speed (`drol-diag data generate`).

    python benchmarks/datagen.py [--episodes N] [--full] [--json PATH]

Measures, on cube-single-play-v0 episodes of 1001 steps:
- the baseline: OGBench's own generation loop on one core (gymnasium.make environment with its wrappers,
  CubePlanOracle), steps/s, and drol-diag's fast path on the same episodes;
- drol-diag's generator at W=1 and W=2 worker processes (`generate_arrays`, 4 episodes per worker), steps/s
  in steady state (after each worker's first episode; start-up measured separately), and the ratio against
  0.85 x baseline x W (target: >= 1);
- writing the npz (MB/s), and from all of these the projected time of the full cube-single-play-v0
  (1000 + 100 episodes; target: <= 12 minutes on the 2-core machine).
`--full` also generates the full cube-single-play-v0 end to end (`drol-diag data generate` in a temporary
folder, the default workers) and reports its wall time. Prints the figures and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from drol_diag import datagen
from drol_diag.tasks.episodes import usable_cores

DATASET = "cube-single-play-v0"
STEPS = 1001  # rows per episode, as the official data
TARGET_RATIO = 0.85  # throughput >= 0.85 x baseline x workers
TARGET_FULL_S = 12 * 60  # the full cube-single-play-v0 on 2 cores


def one_core_steps_per_second(episodes: int, fast: bool) -> float:
    """Steps/s of episodes 0..episodes-1 in this process, environment built and compiled beforehand.
    fast=False is OGBench's own loop: gymnasium.make environment with its wrappers, the oracle, a row per
    step (the generator's plain path, which tests/test_datagen.py shows writes the same bytes as the fast one)."""
    plan = datagen.plan_generation(DATASET, episodes, STEPS, seed=0)
    runner = datagen.make_episode_runner(plan, fast=fast)
    runner.env.reset(seed=0)  # compiles the model (not timed)
    started = time.perf_counter()
    datagen.run_chunk(runner, 0, episodes)
    return episodes * STEPS / (time.perf_counter() - started)


def generator_figures(workers: int, episodes: int) -> dict:
    """Steady-state and whole-call steps/s of `generate_arrays` with `workers` processes."""
    plan = datagen.plan_generation(DATASET, episodes - 1, STEPS, seed=0, val_episodes=1)  # W | total: no lone tail
    marks: list[datagen.Progress] = []
    started = time.perf_counter()
    train, validation, stats = datagen.generate_arrays(plan, workers, marks.append)
    total = time.perf_counter() - started
    # steady state: from the moment every worker has finished its first chunk (start-up and env build behind it)
    first = marks[min(workers, len(marks)) - 1]
    last = marks[-1]
    steady = (last.rows_done - first.rows_done) / max(last.seconds - first.seconds, 1e-9)
    return {"workers": workers, "episodes": plan.total_episodes, "steady_steps_per_s": steady,
            "whole_steps_per_s": plan.total_rows / total, "startup_s": first.seconds - first.rows_done / steady,
            "arrays": (train, validation), "targets": stats.targets, "reached": stats.reached}


def write_megabytes_per_second(arrays: dict[str, np.ndarray]) -> float:
    folder = tempfile.mkdtemp(prefix="drol-datagen-bench-")
    path = os.path.join(folder, "x.npz")
    started = time.perf_counter()
    datagen.write_npz(path, arrays)
    seconds = time.perf_counter() - started
    os.remove(path)
    os.rmdir(folder)
    return sum(a.nbytes for a in arrays.values()) / 1e6 / seconds


def full_generation_seconds() -> float:
    folder = tempfile.mkdtemp(prefix="drol-datagen-full-")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cli", "data", "generate", DATASET, "--dataset-dir", folder],
                   check=True)
    seconds = time.perf_counter() - started
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    os.rmdir(folder)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4, help="episodes per worker in the throughput runs")
    parser.add_argument("--full", action="store_true", help="also time the full cube-single-play-v0 end to end")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} (other work on the machine slows "
          "everything below)", flush=True)
    baseline = one_core_steps_per_second(args.episodes, fast=False)
    print(f"baseline, OGBench's loop (gymnasium.make environment and wrappers) on one core: {baseline:.0f} steps/s",
          flush=True)
    fast = one_core_steps_per_second(args.episodes, fast=True)
    print(f"drol-diag's fast path on the same episodes, one core: {fast:.0f} steps/s ({fast / baseline:.2f}x)",
          flush=True)
    runs = {}
    for workers in (1, 2):
        runs[workers] = generator_figures(workers, args.episodes * workers)
        run = runs[workers]
        ratio = run["steady_steps_per_s"] / (TARGET_RATIO * baseline * workers)
        run["ratio"] = ratio
        print(f"drol-diag generate, W={workers}: {run['steady_steps_per_s']:.0f} steps/s steady "
              f"({run['whole_steps_per_s']:.0f} over the whole call, {run['startup_s']:.1f} s start-up); "
              f"ratio to {TARGET_RATIO} x baseline x W: {ratio:.2f} (target >= 1)", flush=True)
    train, validation = runs[2]["arrays"]
    write_rate = write_megabytes_per_second(train)
    print(f"writing the npz (DEFLATE level {datagen.ZIP_COMPRESSLEVEL}): {write_rate:.0f} MB/s")

    recipe = datagen.RECIPES[DATASET]
    full_rows = (recipe.episodes + recipe.episodes // 10) * STEPS
    row_bytes = sum(a.nbytes for a in train.values()) / len(train["actions"])
    projected = (runs[2]["startup_s"] + full_rows / runs[2]["steady_steps_per_s"]
                 + full_rows * row_bytes / 1e6 / write_rate)
    print(f"projected full {DATASET} ({full_rows:,} rows, {full_rows * row_bytes / 1e6:.0f} MB) at W=2: "
          f"{projected / 60:.1f} min (target <= {TARGET_FULL_S / 60:.0f} min)")
    figures = {"baseline_steps_per_s": baseline, "fast_one_core_steps_per_s": fast, "write_mb_per_s": write_rate,
               "projected_full_s": projected,
               "targets": {"ratio": 1.0, "full_s": TARGET_FULL_S},
               **{f"w{w}_{key}": run[key] for w, run in runs.items()
                  for key in ("steady_steps_per_s", "whole_steps_per_s", "startup_s", "ratio")}}
    if args.full:
        figures["full_s"] = full_generation_seconds()
        print(f"full {DATASET} end to end ({usable_cores()} workers): {figures['full_s'] / 60:.1f} min "
              f"(target <= {TARGET_FULL_S / 60:.0f} min)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
