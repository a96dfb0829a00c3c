"""The report's speed target.

    python benchmarks/report.py [--runs-dir DIR] [--json PATH]

A 10-run sweep (modes-2d, dynamic and static-routing x K 1, 2, 4, 8, 16, 4 seeds, 4x64 networks,
1000 updates, diagnostics and evaluation on) is trained once (or DIR is reused), then
`drol-diag report` runs on it with the default 2000 bootstrap repetitions. Wall time of the whole
command, start-up included. Target: under 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 60.0
SWEEP = ["--tasks", "modes-2d", "--ablations", "dynamic,static-routing", "--k", "1,2,4,8,16", "--seeds", "0-3",
         "--steps", "1000", "--hidden", "64,64,64,64", "--log-interval", "200", "--eval-interval", "200"]


def drol_diag(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cli", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, help="reuse (or keep) the sweep here")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="drol-report-bench-")) / "runs"
    print(f"training the 10-run sweep under {runs} (skipped where finished) ...", flush=True)
    drol_diag("sweep", *SWEEP, "--out", str(runs), "--no-progress")
    started = time.perf_counter()
    drol_diag("report", str(runs))
    seconds = time.perf_counter() - started
    print(f"report of a 10-run sweep (4 seeds each, 2000 bootstrap repetitions): {seconds:.1f} s, whole command "
          f"(target < {TARGET_S:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"report_s": seconds, "runs_dir": str(runs), "target_s": TARGET_S}, f, indent=2)


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")
    main()
