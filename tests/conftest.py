"""Test set-up: MuJoCo renders headless, XLA compiles fast and caches what it compiled on disk for the
whole session, the test modules go to the xdist workers longest first, and the fixtures that several
modules share (no network; one small finished sweep and one tiny OGBench dataset, made once).

The compilation cache is one folder per pytest session, made by the process that starts the session
and handed down through the environment (DROL_DIAG_COMPILE_CACHE, which drol_diag.platform.start_process
turns into JAX's JAX_COMPILATION_CACHE_DIR, as for every drol-diag process): the pytest-xdist
workers and every process the tests start (CLI runs, sweeps, Ray workers) compile each program
once between them; the behaviour densities (DROL_DIAG_DENSITY_CACHE) are fitted once between them alike.
The starting process removes both folders at the end.
"""

import contextlib
import fcntl
import gc
import os
import shutil
import signal
import socket
import tempfile
import urllib.request
from pathlib import Path

import pytest

from drol_diag.platform import (
    COMPILE_CACHE_VARIABLE,
    DENSITY_CACHE_VARIABLE,
    QUICK_COMPILE_FLAGS,
    add_cpu_flags,
    start_process,
)

# Most of the suite's time is XLA compiling many small programs, not running them: drol_diag.platform's
# QUICK_COMPILE_FLAGS (measured on the 2-core machine CI uses: LLVM -O0 against -O1, a tiny variant's run 9.2 s ->
# 7.6 s; the loop emitters, the suite's CPU time 722 s -> 651 s on top of -O1), while a run of 2000 updates or more
# and the density fit get -O1 back (platform.optimised_compile). Every comparison in the tests
# is between results of this session, which all get the flags: they go through the environment to the xdist
# workers and to every process the tests start. Only for the jaxlib line known to have them, on the CPU backend
# (platform.add_cpu_flags).
add_cpu_flags(*QUICK_COMPILE_FLAGS)
CACHE_OWNER_ENV = "DROL_DIAG_TESTS_XLA_CACHE_OWNER"  # the pid of the process that made the cache folder
if os.environ.get(CACHE_OWNER_ENV) is None:  # the session's first process (not an xdist worker)
    os.environ[CACHE_OWNER_ENV] = str(os.getpid())
    os.environ[COMPILE_CACHE_VARIABLE] = tempfile.mkdtemp(prefix="drol-diag-test-xla-cache-")
    os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)  # the session's own folder, never a user's cache
    os.environ[DENSITY_CACHE_VARIABLE] = tempfile.mkdtemp(prefix="drol-diag-test-density-")  # fits, likewise
start_process()  # as the command line does: MUJOCO_GL, XLA:CPU flags and the compilation cache before JAX starts
# A test run started where Ctrl-C is ignored (a background job of a script, nohup) would hand that on to every
# process it starts, and Python then never raises KeyboardInterrupt in them: the tests of what Ctrl-C does (a
# dataset generation, an evaluation) would wait out their deadlines. Ctrl-C as in a terminal, for this process and
# every process it starts (the xdist workers too, which run this file again).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# A worker's heap grows with every program it keeps, and Python's cyclic collector scans it again each few hundred
# allocations: collecting young objects every 200,000 instead of 700 took two test files 81 s -> 76 s (same memory).
gc.set_threshold(200_000, 20, 20)

import jax  # noqa: E402  (after the environment above: JAX reads it when first imported)

from tests.helpers import (  # noqa: E402
    FINISHED_SWEEP,
    SMALL_SWEEP,
    SMALL_SWEEP_GROUPS,
    TINY_CUBE,
    run_cli,
    write_tiny_ogbench_dataset,
)

jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # (in case JAX started before this file)


# pytest-xdist hands whole modules to its workers (--dist loadfile) in the order of the collection
# (--no-loadscope-reorder: not by their number of tests, a poor guide to their length here). The
# longest first, so that no long module starts last on one worker while the other has finished: the
# seconds each took in `make test` on the 2-core machine at 6f7e631 (only the order matters; modules not listed
# follow in file order).
MODULE_SECONDS = {
    "test_sweep_executors.py": 92, "test_calibration.py": 68, "test_truth_tasks.py": 44, "test_variants.py": 42,
    "test_report.py": 40, "test_evaluation.py": 38, "test_run.py": 34, "test_compile_cache.py": 29,
    "test_datagen.py": 26, "test_grid.py": 23, "test_learner.py": 19, "test_benchmarks.py": 18,
    "test_diagnostics.py": 18, "test_slurm.py": 18, "test_corridor.py": 16, "test_density.py": 16,
    "test_variant_maths.py": 15, "test_run_ogbench.py": 14, "test_ogbench.py": 13, "test_custom_tasks.py": 12,
    "test_open_runs.py": 12, "test_tracking.py": 9, "test_examples.py": 8, "test_minari.py": 8, "test_platform.py": 7,
    "test_truth_diagnostics.py": 7, "test_gpus.py": 7, "test_sweep.py": 7, "test_config_and_modes.py": 6,
    "test_yardsticks.py": 6, "test_report_render.py": 6, "test_bad_input.py": 5, "test_report_text.py": 5,
    "test_report_inventory.py": 4, "test_resume_scores.py": 4, "test_help_and_presets.py": 3, "test_verdicts.py": 3,
    "test_evaluate.py": 2, "test_montecarlo.py": 0, "test_structure.py": 0,
}


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: -MODULE_SECONDS.get(item.path.name, 0))  # (a stable sort: tests stay in order)


def pytest_unconfigure(config):
    if os.environ.get(CACHE_OWNER_ENV) == str(os.getpid()):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
        shutil.rmtree(os.environ[DENSITY_CACHE_VARIABLE], ignore_errors=True)


@pytest.fixture
def no_network(monkeypatch):
    """Any download attempt fails the test (ogbench's downloader fetches with urllib.request.urlopen), and
    every attempt to resolve a host or open a connection is refused and recorded: the list returned."""
    attempts = []

    def refuse_download(*args, **kwargs):
        raise AssertionError("tried to use the network")

    def refuse(name):
        def call(*args, **kwargs):
            attempts.append((name, args))
            raise OSError(f"test: network use refused ({name})")
        return call

    monkeypatch.setattr(urllib.request, "urlopen", refuse_download)
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    return attempts


# ------------------------------------------------------------------------------------------------
# Data that several modules read, made once per session: by the first pytest-xdist worker that needs
# it, while another that needs it too waits (a lock file in the session's temporary folder, which the
# workers share). Nobody writes into these folders: a test that adds files works on a copy.


def _session_folder(tmp_path_factory) -> Path:
    """A folder all the processes of this pytest session share: the xdist workers' common temporary
    folder (each worker has popen-gwN in it), or, without xdist, this process's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _made_once(tmp_path_factory, name: str):
    """Yields (folder, made): <session folder>/<name>/data and whether it is already made, holding the
    lock; if it was not, the block makes it (an exception leaves it unmade, for the next to try)."""
    folder = _session_folder(tmp_path_factory) / name
    folder.mkdir(exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # (released when the file closes)
        made = (folder / "made").exists()
        if not made:
            shutil.rmtree(folder / "data", ignore_errors=True)  # (a failed attempt)
        yield folder / "data", made
        (folder / "made").touch()


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory) -> Path:
    """tests.helpers.SMALL_SWEEP, finished (two groups at a time, one core each): its folder, for the
    sweep and the report tests. Read it, never write to it."""
    with _made_once(tmp_path_factory, "small-sweep") as (out, made):
        if not made:
            result = run_cli("sweep", *SMALL_SWEEP, "--out", str(out), "--no-progress", "--jobs", "2",
                             "--threads", "1")
            assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def finished_sweep(small_sweep, tmp_path_factory) -> Path:
    """tests.helpers.FINISHED_SWEEP, finished: the small sweep's folder (copied), swept again with fql added (its 4
    finished groups skipped, fql trained). For the sweep tests (tests/test_sweep.py, test_sweep_executors.py),
    which may sweep it again without changing a run."""
    with _made_once(tmp_path_factory, "finished-sweep") as (out, made):
        if not made:
            shutil.copytree(small_sweep, out, symlinks=True)
            result = run_cli("sweep", *FINISHED_SWEEP, "--out", str(out), "--no-progress", "--jobs", "2",
                             "--threads", "1")
            assert result.returncode == 0, result.stdout + result.stderr[-2000:]
            assert result.stdout.count("skipped") == len(SMALL_SWEEP_GROUPS) and result.stdout.count(" done ") == 1
    return out


@pytest.fixture(scope="session")
def tiny_cube_dataset(tmp_path_factory) -> Path:
    """A folder holding tests.helpers.TINY_CUBE, a tiny cube-single-play-v0 dataset in the official
    format (written by the dataset generator). Read it, never write to it."""
    with _made_once(tmp_path_factory, "tiny-cube-dataset") as (folder, made):
        if not made:
            write_tiny_ogbench_dataset(folder, **TINY_CUBE)
    return folder

