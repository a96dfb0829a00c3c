"""JAX's persistent compilation cache, which every drol-diag process turns on before JAX starts
(drol_diag.platform.compilation_cache_settings): where it lives, how it is turned off, that the user's own JAX
setting wins, and that a second process finds every program the first compiled there; and, within one process, that
a second run with the same settings traces and compiles nothing (drol.learner's program factories and the
diagnostics' are cached per learner)."""

from __future__ import annotations

import collections
import os
import subprocess
import sys

import jax
import jax.monitoring
import numpy as np

from drol_diag.platform import COMPILE_CACHE_MAX_BYTES, COMPILE_CACHE_VARIABLE, compilation_cache_settings
from drol_diag.runfolder import store
from drol_diag.settings import resolve
from drol_diag.tasks import load_task
from training.driver import train

# A process as drol-diag starts one, compiling a small program (a dense layer and its gradient).
PROGRAM = """
from drol_diag.platform import start_process
start_process()
import jax, jax.numpy as jnp
loss = lambda w, x: jnp.sum(jnp.tanh(x @ w) ** 2)
w = jnp.linspace(-1.0, 1.0, 12).reshape(3, 4)
print(repr(float(jax.jit(jax.grad(loss))(w, jnp.ones((5, 3))).sum())))
"""


def test_the_cache_folder_its_default_off_and_the_users_own_jax_setting():
    default = compilation_cache_settings({})
    assert default["JAX_COMPILATION_CACHE_DIR"].endswith(os.path.join("drol-diag", "jax"))  # under the user cache
    assert default["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"  # every program, however quick
    assert default["JAX_COMPILATION_CACHE_MAX_SIZE"] == str(COMPILE_CACHE_MAX_BYTES)
    assert compilation_cache_settings({COMPILE_CACHE_VARIABLE: "/c"})["JAX_COMPILATION_CACHE_DIR"] == "/c"
    assert compilation_cache_settings({COMPILE_CACHE_VARIABLE: "off"}) == {}
    assert compilation_cache_settings({"JAX_COMPILATION_CACHE_DIR": "/mine", COMPILE_CACHE_VARIABLE: "/c"}) == {}


def test_a_second_process_finds_every_program_in_the_cache_and_computes_the_same(tmp_path):
    folder = tmp_path / "cache"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}  # not the session's own cache
    environ[COMPILE_CACHE_VARIABLE] = str(folder)
    run = lambda: subprocess.run([sys.executable, "-c", PROGRAM], env=environ, capture_output=True, text=True,
                                 check=True).stdout
    first = run()
    entries = sorted(folder.iterdir())
    assert any(path.name.startswith("jit_") for path in entries)
    assert run() == first and sorted(folder.iterdir()) == entries  # all hits: nothing new compiled
    environ[COMPILE_CACHE_VARIABLE] = "off"
    assert run() == first and sorted(folder.iterdir()) == entries


def test_a_second_run_with_the_same_settings_in_one_process_traces_and_compiles_nothing(tmp_path):
    events: collections.Counter = collections.Counter()
    task = load_task("modes-2d")  # static-routing: its owner table's program too
    learner, run = resolve("modes-2d", "auto", ablation="static-routing", num_candidates=4, actor_hidden=(8,),
                           critic_hidden=(8,), seeds=(0, 1), steps=40, log_interval=20, eval_interval=20,
                           checkpoint_interval=40, probes=16)
    first = train(task, learner, run, tmp_path / "first", progress=False)
    listener = lambda name, seconds, **_: events.update([name])  # noqa: E731
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        second = train(task, learner, run, tmp_path / "second", progress=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    traced = {name: n for name, n in events.items() if name.startswith("/jax/core/compile/")}
    assert not traced, traced  # no jaxpr traced, lowered or compiled: every program came from the first run
    assert second.scores == first.scores
    logs = [store.read_store(tmp_path / name / "modes-2d" / "static-routing-k4") for name in ("first", "second")]
    for name in ("flip_rate", "ood_frac", "true_ood_frac", "coverage", "critic_loss"):
        np.testing.assert_array_equal(logs[0][name].values, logs[1][name].values)


def test_a_command_line_run_writes_its_programs_to_the_cache(tmp_path):
    """The command line sets the cache before any of its imports reaches JAX (cli/__init__.py): a run started as
    `python -m cli` (as the console script) leaves its compiled programs in the folder."""
    folder = tmp_path / "cache"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    environ[COMPILE_CACHE_VARIABLE] = str(folder)
    subprocess.run([sys.executable, "-m", "cli", "run", "--task", "modes-2d", "--hidden", "8", "--seeds", "0",
                    "--steps", "20", "--log-interval", "20", "--eval-interval", "20", "--no-diagnostics",
                    "--no-progress", "--out", str(tmp_path / "runs")], env=environ, check=True, capture_output=True)
    assert any(path.name.startswith("jit_") for path in folder.iterdir())
