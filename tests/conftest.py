"""Test set-up: MuJoCo renders headless, compiled XLA programs are cached on disk for the whole
session, and the fixtures that several modules share (no network, one small finished sweep).

The compilation cache is one folder per pytest session, made by the process that starts the session
and handed down through the environment (JAX reads JAX_COMPILATION_CACHE_DIR): the pytest-xdist
workers and every process the tests start (CLI runs, sweeps, Ray workers) compile each program
once between them. The starting process removes the folder at the end.
"""

import fcntl
import os
import shutil
import socket
import tempfile
import urllib.request
from pathlib import Path

import pytest

from drol_diag.platform import start_process

# Most of the suite's time is XLA compiling many small programs, not running them. LLVM at -O1 instead
# of XLA's default -O2 compiles them about a third faster and runs these tiny networks as fast (the
# numbers may differ from the default's in the last bits; every comparison in the tests is between
# processes of this session, which all get the flag). Through the environment, so that the xdist workers
# and every process the tests start use it too.
LLVM_O1 = "--xla_backend_optimization_level=1"
if LLVM_O1 not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {LLVM_O1}".strip()
start_process()  # as the command line does: MUJOCO_GL, XLA:CPU flags before JAX starts

CACHE_OWNER_ENV = "DROL_DIAG_TESTS_XLA_CACHE_OWNER"  # the pid of the process that made the cache folder
if os.environ.get(CACHE_OWNER_ENV) is None:  # the session's first process (not an xdist worker)
    os.environ[CACHE_OWNER_ENV] = str(os.getpid())
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="drol-diag-test-xla-cache-")
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # (tests compile many small, identical programs)
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

import jax  # noqa: E402  (after the environment above: JAX reads it when first imported)

from tests.helpers import SMALL_SWEEP, run_cli  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config):
    if os.environ.get(CACHE_OWNER_ENV) == str(os.getpid()):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


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
# tests.helpers.SMALL_SWEEP, trained once per session for the sweep and the report tests: by the first
# pytest-xdist worker that needs it, while another waits for it (a lock file in the session's temporary
# folder, which the workers share). Nobody writes into it: a test that adds files (a report, another
# group) works on a copy.


def _session_folder(tmp_path_factory) -> Path:
    """A folder all the processes of this pytest session share: the xdist workers' common temporary
    folder (each worker has popen-gwN in it), or, without xdist, this process's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory) -> Path:
    """The finished SMALL_SWEEP (two groups at a time, one core each): its folder. Read it, never write to it."""
    folder = _session_folder(tmp_path_factory) / "small-sweep"
    folder.mkdir(exist_ok=True)
    out, finished = folder / "runs", folder / "finished"
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # (released when the file closes)
        if not finished.exists():
            shutil.rmtree(out, ignore_errors=True)  # (a failed attempt of another worker)
            result = run_cli("sweep", *SMALL_SWEEP, "--out", str(out), "--no-progress", "--jobs", "2",
                             "--threads", "1")
            assert result.returncode == 0, result.stdout + result.stderr[-2000:]
            finished.touch()
    return out
