"""Where a run's process time goes: the time breakdown of `drol-diag run` (summary.json's `phases`).

    python benchmarks/overhead.py [--quick] [--json PATH]

Runs, as `drol-diag run` subprocesses, the demo's configuration (the Makefile's DEMO_RUN, --ablation dynamic:
arc-2d, K 4, 5 seeds, 4000 updates, 2x64, batch 64, a row every 500 updates, an evaluation every 1000) and one
group of the settle study (examples/settle.toml: arc-2d dynamic K 4, 8 seeds, 6000 updates, 2x64, batch 64, a row
every 750, an evaluation every 1500, 512 probes). Each runs once to warm the persistent compilation cache and
the behaviour density's cache, then again to be measured. Per configuration, a table of the phases
(training.observer.PHASES): seconds and share of the process wall time; and the two ratios issue 25 targets:
the training's share of the process wall time (>= 50% for the demo, >= 70% for the settle group) and the
diagnostic rows' cost over the training between two rows (the diagnostics' seconds over the training's: one row
per log interval; <= 25%).

--quick: the same tiny run twice (100 updates of 1x8 networks, 2 seeds, 64 probes, no density), no warming run:
the whole path, for the test suite (tests/test_benchmarks.py); its figures say nothing about the configurations.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.observer import PHASES  # noqa: E402  (no JAX computation: the runs are subprocesses)

COMMON = ["--task", "arc-2d", "--ablation", "dynamic", "--k", "4", "--bc-coef", "10", "--batch-size", "64",
          "--lr", "1e-3", "--hidden", "64,64"]
CONFIGURATIONS = {  # name -> (drol-diag run options, the training share's target)
    "demo": (["--seeds", "0-4", "--steps", "4000", "--log-interval", "500", "--eval-interval", "1000"], 0.50),
    "settle group": (["--seeds", "0-7", "--steps", "6000", "--log-interval", "750", "--eval-interval", "1500",
                      "--probes", "512"], 0.70),
}
TINY = ["--seeds", "0-1", "--steps", "100", "--log-interval", "50", "--eval-interval", "100", "--probes", "64",
        "--hidden", "8", "--density", "off"]  # (the last of a repeated option counts)
QUICK = {"demo": TINY, "settle group": TINY}  # (the second run compiles nothing new)
DIAGNOSTICS_TARGET = 0.25  # the diagnostic rows' seconds over the training's


def run(options: list[str], out: Path) -> dict:
    """`drol-diag run OPTIONS` in a subprocess (from scratch: --force); its summary.json."""
    done = subprocess.run([sys.executable, "-m", "cli", "run", *COMMON, *options, "--out", str(out), "--force",
                           "--no-progress"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"drol-diag run {' '.join(options)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    (summary,) = out.glob("*/*/summary.json")
    return json.loads(summary.read_text())


def measure(name: str, options: list[str], target: float, folder: Path, warm: bool) -> dict:
    """One configuration's figures: its phases, process wall time and the two ratios; printed as a table."""
    if warm:
        run(options, folder / "warm")
    summary = run(options, folder / "measured")
    phases, wall = summary["phases"], summary["process_wall_s"]
    figures = {"options": COMMON + options, "process_wall_s": wall, "phases": phases,
               "training_share": phases["training"] / wall, "training_share_target": target,
               "diagnostics_over_training": phases["diagnostics"] / phases["training"],
               "diagnostics_target": DIAGNOSTICS_TARGET, "warm": warm}
    print(f"\n{name}: drol-diag run {' '.join(figures['options'])}\n  process wall time {wall:.1f} s"
          f"{'' if warm else ' (no warming run: --quick)'}")
    print(f"  {'phase':<22}{'seconds':>9}{'share':>8}")
    for phase in PHASES:
        print(f"  {phase:<22}{phases[phase]:>9.2f}{phases[phase] / wall:>8.1%}")
    print(f"  training share of the process wall time: {figures['training_share']:.1%} (target >= {target:.0%})")
    print(f"  diagnostic rows over the training between two rows: {figures['diagnostics_over_training']:.1%} "
          f"(target <= {DIAGNOSTICS_TARGET:.0%})")
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny runs, no warming run: the whole path, for the tests")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    figures = {"quick": args.quick, "configurations": {}}
    with tempfile.TemporaryDirectory(prefix="drol-overhead-") as folder:
        for index, (name, (options, target)) in enumerate(CONFIGURATIONS.items()):
            figures["configurations"][name] = measure(name, QUICK[name] if args.quick else options, target,
                                                      Path(folder) / str(index), warm=not args.quick)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
