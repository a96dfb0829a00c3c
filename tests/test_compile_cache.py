"""JAX's persistent compilation cache, which every drol-diag process turns on before JAX starts
(drol_diag.platform.compilation_cache_settings): where it lives, how it is turned off, that the user's own JAX
setting wins, and that a second process finds every program the first compiled there; and, within one process, that
a second run with the same settings traces and compiles nothing (drol.learner's program factories and the
diagnostics' are cached per learner). And the traced programs kept beside it (drol_diag.programs): read back instead
of traced, keyed by settings (less the float hyper-parameters, an argument) and shapes, and the same numbers whether
traced, kept or read back."""

from __future__ import annotations

import collections
import os
import subprocess
import sys

import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np

from drol_diag.platform import COMPILE_CACHE_MAX_BYTES, COMPILE_CACHE_VARIABLE, compilation_cache_settings
from drol_diag.programs import KeptProgram, code_version
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
    # (test_variants.py's settings: the session's kept programs may serve the first run; the second must trace nothing)
    learner, run = resolve("modes-2d", "auto", ablation="static-routing", num_candidates=4, actor_hidden=(8,),
                           critic_hidden=(8,), seeds=(0, 1), steps=40, log_interval=20, eval_interval=20,
                           checkpoint_interval=40, probes=64)
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


def _kept(settings, traced: list, name: str = "affine") -> KeptProgram:
    """A kept program of a pytree function (a dict in, a tuple holding a dict out), its second argument donated;
    `traced` counts its tracings."""
    def make(_):
        traced.append(settings)
        return lambda params, x: ({"y": x @ params["w"] + params["b"]}, x + 1.0)
    return KeptProgram(name, settings, make, donate_argnums=(1,))


def test_a_kept_program_is_read_back_not_traced_and_keyed_by_its_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path))
    params = {"w": jnp.arange(6.0).reshape(3, 2), "b": jnp.ones(2)}
    x = lambda: jnp.linspace(0.0, 1.0, 12).reshape(4, 3)  # (a fresh array each call: it is donated)
    traced: list = []
    first = _kept("a", traced)(params, x())
    (kept,) = (tmp_path / "drol-diag-programs").iterdir()
    assert kept.name.startswith(f"affine-{code_version()}-") and traced == ["a"]
    again = _kept("a", traced)(params, x())  # (a new instance, as in another process: read from the file)
    assert traced == ["a"]
    np.testing.assert_array_equal(again[0]["y"], first[0]["y"])
    np.testing.assert_array_equal(again[1], first[1])
    donated = x()
    _kept("a", traced)(params, donated)
    assert donated.is_deleted()  # the argument's buffers were given to the result, as jax.jit's donate_argnums
    _kept("b", traced)(params, x())  # other settings: traced, kept apart
    _kept("a", traced)(params, x()[:2])  # other shapes: traced, kept apart
    assert traced == ["a", "b", "a"] and len(list((tmp_path / "drol-diag-programs").iterdir())) == 3

    kept.write_bytes(kept.read_bytes()[:40])  # cut short: traced again and replaced
    np.testing.assert_array_equal(_kept("a", traced)(params, x())[0]["y"], first[0]["y"])
    assert traced[-1] == "a" and len(traced) == 4 and kept.stat().st_size > 40
    assert _kept("a", traced)(params, x()) and len(traced) == 4

    stale = tmp_path / "drol-diag-programs" / "affine-0000000000000000-0.bin"  # another code version's
    stale.write_bytes(b"old")
    _kept("c", traced)(params, x())
    assert not stale.exists()
    unkept = tmp_path / "none"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(unkept))
    _kept(None, traced)(params, x())  # no settings: traced in every process, nothing written
    assert traced[-1] is None and not unkept.exists()


def test_a_program_jax_export_cannot_keep_is_jitted_as_before(tmp_path, monkeypatch):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path))
    doubled = lambda x: jax.pure_callback(lambda a: np.asarray(a) * 2, jax.ShapeDtypeStruct(x.shape, x.dtype), x)
    program = KeptProgram("callback", "settings", lambda _: lambda x: doubled(x) + 1.0)  # (a host callback)
    np.testing.assert_array_equal(program(jnp.arange(3.0)), [1.0, 3.0, 5.0])
    assert not list((tmp_path / "drol-diag-programs").glob("*"))  # nothing kept


def test_a_command_line_run_keeps_its_programs_and_a_second_computes_the_same_from_them(tmp_path):
    """The command line sets the cache before any of its imports reaches JAX (cli/__init__.py): a run started as
    `python -m cli` (as the console script) leaves its compiled programs there, and its traced ones beside them; a
    second process, at other float hyper-parameters (an argument of the programs, not part of their key), reads them
    back (no kept file added or rewritten) and logs the same numbers, bit for bit, as the same run alone in an empty
    cache, which traces its own."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    logs = []
    for leg, (cache, hyperparameters) in enumerate((("cache", ()), ("cache", OTHER_HYPERPARAMETERS),
                                                    ("alone", OTHER_HYPERPARAMETERS))):
        environ[COMPILE_CACHE_VARIABLE] = str(tmp_path / cache)
        subprocess.run([sys.executable, "-m", "cli", "run", "--task", "modes-2d", "--k", "4", "--hidden", "8",
                        "--seeds", "0-1", "--steps", "40", "--log-interval", "20", "--eval-interval", "20",
                        "--probes", "16", "--density", "off", "--no-progress", *hyperparameters,
                        "--out", str(tmp_path / f"runs{leg}")], env=environ, check=True, capture_output=True)
        logs.append(store.read_store(tmp_path / f"runs{leg}" / "modes-2d" / "dynamic-k4"))
        folder = tmp_path / "cache"
        if leg == 0:
            assert any(path.name.startswith("jit_") for path in folder.iterdir())
            kept = {path.name: path.stat().st_mtime_ns for path in (folder / "drol-diag-programs").iterdir()}
            assert {name.split("-")[0] for name in kept} == {
                "init", "train_chunk", "probe_set", "diagnose", "coverage", "truth", "act", "visited_q", "task_sample",
                "reference_actions"}
        if leg == 1:
            assert {path.name: path.stat().st_mtime_ns for path in (folder / "drol-diag-programs").iterdir()} == kept
    assert not np.array_equal(logs[1]["actor_loss"].values, logs[0]["actor_loss"].values)  # (other hyper-parameters)
    for name in logs[1].data_vars:
        if "time" not in name:
            np.testing.assert_array_equal(logs[1][name].values, logs[2][name].values, err_msg=name)


OTHER_HYPERPARAMETERS = ("--bc-coef", "3", "--lr", "1e-3", "--tau", "0.05", "--discount", "0.9")
