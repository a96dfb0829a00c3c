"""One command for a lent GPU: the figures issue 25 asks of one, in one JSON file.

    python benchmarks/device_check.py [--quick] [--json PATH]     (default PATH: device-check.json)

1. "paper": the paper configuration (benchmarks/gpu.py: 1, 8 and 32 seeds, a diagnostics row, an evaluation,
   the projection of 8 seeds x 1M updates);
2. "breakdown": the time breakdown of the demo's run and of a settle-study group (benchmarks/overhead.py);
3. "largest group": the settle study's largest group (examples/settle.toml's settings at its largest K on its
   task with the most action dimensions, 8 seeds) as `drol-diag run`, its summary.json.

The file is rewritten (atomically) after each part, so a check cut short by the device's time limit keeps what it
measured; each part's wall seconds are in it. --quick: every part at its tiny size (seconds on a CPU: the test
suite's check of the path).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import gpu, overhead  # noqa: E402
from drol_diag.runfolder import store  # noqa: E402

STUDY = ROOT / "examples" / "settle.toml"
GROUP_KEYS = ("seeds", "bc-coef", "steps", "batch-size", "lr", "hidden", "log-interval", "eval-interval", "probes")


def largest_group(quick: bool) -> list[str]:
    """`drol-diag run` options of the study's largest group: its settings, the largest K, the task with the most
    action dimensions (the number in its name), dynamic routing; --quick: overhead.TINY on top."""
    study = tomllib.loads(STUDY.read_text())
    task = max(study["tasks"], key=lambda name: int(name.rsplit("-", 1)[1].rstrip("d")))
    options = ["--task", task, "--k", str(max(study["k"]))]
    for key in GROUP_KEYS:
        value = study[key]
        options += [f"--{key}", ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return options + (overhead.TINY if quick else [])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every part at its tiny size (the tests' check)")
    parser.add_argument("--json", default="device-check.json", help="where the figures go (default: %(default)s)")
    args = parser.parse_args(argv)
    path, figures = Path(args.json), {"quick": args.quick, "seconds": {}}

    def part(name: str, measure) -> None:
        start = time.perf_counter()
        figures[name] = measure()
        figures["seconds"][name] = time.perf_counter() - start
        store.write_json_atomic(path, figures)
        print(f"== {name}: {figures['seconds'][name]:.0f} s, written to {path}", flush=True)

    quick = ["--quick"] if args.quick else []
    part("paper", lambda: gpu.main(quick))
    part("breakdown", lambda: overhead.main(quick))
    with tempfile.TemporaryDirectory(prefix="drol-device-check-") as folder:
        part("largest group", lambda: overhead.run(largest_group(args.quick), Path(folder)))
    return figures


if __name__ == "__main__":
    main()
