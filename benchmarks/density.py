"""The behaviour density's fit time against its targets (issue 23): at most 30 s on an embedded task, at most
3 minutes on a 1M-transition OGBench dataset (cube-single-play-v0 where its files are in the dataset folder, else
an array of its shape: 1M x 28-D states, 5-D actions; the fit's cost follows its updates, not the rows). Each fit
starts from an empty cache, in this process (compilation included, as a first run pays it).

    python benchmarks/density.py            # arc-2d, arc-21d, cube-single-play-v0 (or its shape)
    python benchmarks/density.py --quick    # arc-2d only (the suite's check that it runs)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from drol_diag.platform import start_process

start_process()

import numpy as np  # noqa: E402

from diagnostics.density import DensitySettings, cached_density  # noqa: E402
from drol_diag.tasks import load_task  # noqa: E402
from drol_diag.tasks.ogbench import ogbench_files  # noqa: E402

EMBEDDED_TARGET_S, OGBENCH_TARGET_S = 30.0, 180.0
CUBE, CUBE_TASK = "cube-single-play-v0", "cube-single-play-singletask-task1-v0"


def cube_shaped(rows: int = 1_000_000, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], str]:
    """cube-single-play-v0's training and validation pairs where its files are here, else arrays of its shape
    (actions a smooth function of the state plus noise, in [-1, 1])."""
    train_path, val_path = ogbench_files(CUBE_TASK)
    if os.path.exists(train_path) and os.path.exists(val_path):
        task = load_task(CUBE_TASK)
        return task.dataset, task.validation, f"{CUBE} ({train_path})"
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(28, 5)) / np.sqrt(28)

    def pairs(n: int) -> dict[str, np.ndarray]:
        states = rng.normal(size=(n, 28)).astype(np.float32)
        actions = np.tanh(states @ weights + 0.3 * rng.normal(size=(n, 5))).astype(np.float32)
        return {"observations": states, "actions": actions}
    return pairs(rows), pairs(rows // 10), f"{CUBE}'s shape, synthetic ({train_path} is not here)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="arc-2d only")
    args = parser.parse_args()
    cases = [("arc-2d", EMBEDDED_TARGET_S)] + ([] if args.quick else [("arc-21d", EMBEDDED_TARGET_S),
                                                                      (CUBE, OGBENCH_TARGET_S)])
    failed = False
    print(f"behaviour density fit ({DensitySettings()}), each from an empty cache:")
    for name, target in cases:
        if name == CUBE:
            train, validation, what = cube_shaped()
        else:
            task = load_task(name)
            train, validation, what = task.dataset, task.validation, name
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            density, _ = cached_density(train, validation, folder=folder)
            seconds = time.perf_counter() - started
        ok = seconds <= target
        failed |= not ok
        print(f"  {what}: {len(train['actions']):,} pairs, {density.summary()}; {seconds:.1f} s with the cache "
              f"write, target <= {target:g} s: {'met' if ok else 'MISSED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
