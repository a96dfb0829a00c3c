"""What several test modules share: running the command line (in this process or as a subprocess),
waiting on a running process, a tiny OGBench dataset, a small learner configuration.

Imported as `tests.helpers` (tests/ is a package). Kept light: JAX, the CLI and the dataset generator
are imported inside the functions that need them, since the worker processes that some tests spawn
import the test module (and with it this one).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from drol.config import DROLConfig  # (a light import: no JAX)

DROL_DIAG = str(Path(sys.executable).with_name("drol-diag"))  # the installed console script
COMMAND_TIMEOUT_S = 600  # a whole command (a sweep, a run) on a loaded 2-core machine
WAIT_S = 300  # waiting for something a running process will do (a file, a line of output)


# ------------------------------------------------------------------------------------------------
# The command line


def invoke(*args: str):
    """`drol-diag ARGS` in this process (typer's CliRunner): exit_code, stdout, stderr, output."""
    from typer.testing import CliRunner

    from cli import app

    return CliRunner().invoke(app, list(args))


def cli_command(*args: str) -> list[str]:
    """`drol-diag ARGS` as a subprocess command (this interpreter, `-m cli`)."""
    return [sys.executable, "-m", "cli", *args]


def run_cli(*args: str, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run `drol-diag ARGS` in a subprocess to its end; text stdout and stderr captured."""
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=timeout)


def start_cli(*args: str) -> subprocess.Popen:
    """Start `drol-diag ARGS` in a subprocess; text stdout and stderr piped."""
    return subprocess.Popen(cli_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# ------------------------------------------------------------------------------------------------
# Processes


class StreamWatch:
    """Reads a process's output pipe (opened in binary mode) in a background thread, so that a test
    can wait for some text to appear (a progress line, a printed pid) with a deadline, and still
    read everything once the process ended."""

    def __init__(self, stream):
        self._chunks: list[bytes] = []
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        while chunk := os.read(stream.fileno(), 1 << 16):
            with self._changed:
                self._chunks.append(chunk)
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._changed:
            return b"".join(self._chunks).decode(errors="replace")

    def wait_for(self, pattern: str, timeout_s: float = WAIT_S) -> re.Match | None:
        """The first match of the regular expression `pattern` in the output, once it appears; None
        if the stream closes (the process ended) or `timeout_s` passes first."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                match = re.search(pattern, b"".join(self._chunks).decode(errors="replace"))
                if match or self._closed or time.monotonic() >= deadline:
                    return match
                self._changed.wait(min(1.0, max(0.0, deadline - time.monotonic())))

    def finish(self, timeout_s: float = WAIT_S) -> str:
        """Everything the process wrote, once its end of the pipe closed (it exited)."""
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"the stream stayed open for {timeout_s} s"
        return self.text


def wait_until(condition, timeout_s: float = WAIT_S, interval_s: float = 0.1) -> bool:
    """Poll `condition()` until it is true (True) or `timeout_s` passed (False)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
    return True


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until_gone(pids, timeout_s: float = 60.0) -> list[int]:
    """The pids still alive after `timeout_s` (polling; returns as soon as none is)."""
    wait_until(lambda: not any(alive(pid) for pid in pids), timeout_s, 0.05)
    return [pid for pid in pids if alive(pid)]


# ------------------------------------------------------------------------------------------------
# Data and configurations

# The small sweep that the sweep and the report tests share (tests/conftest.py's small_sweep fixture):
# modes-2d, dynamic and static-routing at K 2 and 4, three seeds of 300 updates, tiny networks, an
# evaluation (1 episode) and a checkpoint every 100 updates.
SMALL_SWEEP_STEPS = 300
SMALL_SWEEP = ["--tasks", "modes-2d", "--ablations", "dynamic,static-routing", "--k", "2,4", "--seeds", "0-2",
               "--steps", str(SMALL_SWEEP_STEPS), "--hidden", "8", "--log-interval", "100",
               "--eval-interval", "100", "--checkpoint-interval", "100", "--eval-episodes", "1", "--probes", "64"]
SMALL_SWEEP_GROUPS = ("modes-2d/dynamic-k2", "modes-2d/dynamic-k4", "modes-2d/static-routing-k2",
                      "modes-2d/static-routing-k4")


def replace_option(option: str, value: str, grid_args: list[str] = SMALL_SWEEP) -> list[str]:
    """`grid_args` with `option` set to `value`."""
    args = list(grid_args)
    args[args.index(option) + 1] = value
    return args


# The small sweep and an fql group (tests/conftest.py's finished_sweep fixture, for the sweep tests): 5 groups
# of three seeds, 300 updates, a checkpoint every 100.
FINISHED_SWEEP = replace_option("--ablations", "dynamic,static-routing,fql")
FINISHED_GROUPS = (*SMALL_SWEEP_GROUPS, "modes-2d/fql-k1")


# The session's tiny OGBench dataset (tests/conftest.py's tiny_cube_dataset): 3 episodes of 30 rows and a
# validation episode, seed 0.
TINY_CUBE = dict(dataset_name="cube-single-play-v0", episodes=3, steps=30, seed=0, val_episodes=1)


def write_tiny_ogbench_dataset(folder: str | os.PathLike, dataset_name: str = "cube-single-play-v0",
                               episodes: int = 3, steps: int = 30, seed: int = 0,
                               val_episodes: int = 1) -> tuple[str, str]:
    """Write <folder>/<dataset_name>.npz (`episodes` x `steps` rows) and <dataset_name>-val.npz
    (`val_episodes` x `steps` rows) with `drol-diag data generate`'s generator (ogbench's environment and
    oracles, in this process), replacing existing files; returns both paths.

    Keys as in the official files: observations (N, obs_dim) float32, actions (N, action_dim) float32,
    terminals (N,) bool, qpos (N, nq) float32, qvel (N, nv) float32 (+ button_states for scene/puzzle).
    After ogbench's loader drops episode ends, the train split has episodes * (steps - 1) transitions.
    """
    from drol_diag.datagen import generate_dataset

    result = generate_dataset(dataset_name, os.fspath(folder), episodes=episodes, episode_steps=steps, seed=seed,
                              workers=1, force=True, val_episodes=val_episodes)
    return result.train_path, result.val_path


# A small DROL configuration for the learner's maths (tests/test_learner.py, tests/test_variants.py).
TINY_LEARNER = DROLConfig(actor_hidden=(32, 32), critic_hidden=(32, 32), batch_size=64, num_candidates=8, bc_coef=0.7)


def random_dataset(n=512, obs_dim=3, action_dim=2, seed=0):
    """Random transitions as JAX arrays (actions in (-0.99, 0.99), masks 0 or 1)."""
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(seed)
    return dict(observations=jnp.asarray(rng.normal(size=(n, obs_dim)), jnp.float32),
                actions=jnp.asarray(rng.uniform(-0.99, 0.99, (n, action_dim)), jnp.float32),
                rewards=jnp.asarray(rng.normal(size=n), jnp.float32),
                masks=jnp.asarray(rng.integers(0, 2, n), jnp.float32),
                next_observations=jnp.asarray(rng.normal(size=(n, obs_dim)), jnp.float32))


def assert_same_results(out: Path, reference: Path, groups) -> None:
    """Every group (run folder relative to the results folders) of `out` holds bit for bit the checkpoint, logs
    and scores of the same group in `reference`."""
    import filecmp

    import xarray as xr

    from drol_diag.runfolder import store

    for group in groups:
        run, ref = out / group, reference / group
        assert filecmp.cmp(run / store.CHECKPOINT_FILE, ref / store.CHECKPOINT_FILE, shallow=False), group
        with xr.open_zarr(run / store.LOG_STORE, consolidated=False) as logs, \
                xr.open_zarr(ref / store.LOG_STORE, consolidated=False) as ref_logs:
            xr.testing.assert_equal(logs.load(), ref_logs.load())  # values and coordinates (no duplicated rows)
        summary, ref_summary = store.read_json(run / store.SUMMARY_FILE), store.read_json(ref / store.SUMMARY_FILE)
        assert summary["scores"] == ref_summary["scores"] and summary["steps"] == ref_summary["steps"], group


# ------------------------------------------------------------------------------------------------
# The report's wording rules (issue 21)

# every verdict-bearing phrase the report writes: "<point> [<low>, <high>], <n> seeds: <verdict> (... +-<thr>"
VERDICT = re.compile(r"(-?[\d.e+-]+) \[(-?[\d.e+-]+), (-?[\d.e+-]+)\], (\d+) seeds?: (material|negligible|inconclusive) "
                     r"\(the (?:whole )?interval (?:lies beyond|lies within|reaches both within and beyond) "
                     r"(?:(-?[\d.e+-]+) \+- |\+-)([\d.e+-]+)")
FEW = re.compile(r"\(n=(\d+)\): no verdict with \d+ seeds?")


def check_sentences(sentences: list[str]) -> int:
    """Every verdict a sentence states agrees with its interval, seeds and threshold; no sentence says what the
    rules forbid ("no material difference", "at the chance level", "beats" without a material verdict, a verdict
    below MIN_RUNS seeds). Returns how many verdicts were checked."""
    import numpy as np

    from reports import stats

    checked = 0
    for sentence in sentences:
        assert "no material difference" not in sentence and "at the chance level" not in sentence, sentence
        found = list(VERDICT.finditer(sentence))
        for match in found:
            point, low, high, seeds = (float(match[1]), float(match[2]), float(match[3]), int(match[4]))
            null, threshold = float(match[6] or 0), float(match[7])
            assert seeds >= stats.MIN_RUNS, sentence
            assert low <= point <= high, sentence
            interval = stats.Interval(np.array([point]), np.array([low]), np.array([high]), seeds)
            # the printed bounds are rounded to 3 significant digits: a bound that sits on the threshold may round
            if min(abs(abs(low - null) - threshold), abs(abs(high - null) - threshold)) > 1e-3 * max(1, threshold):
                assert stats.verdict(interval, threshold, null) == match[5], sentence
            checked += 1
        for match in FEW.finditer(sentence):
            assert int(match[1]) < stats.MIN_RUNS, sentence
        if " beats " in sentence:
            assert any(m[5] == stats.MATERIAL for m in found), f"'beats' without a material verdict: {sentence}"
    return checked
