"""JAX's persistent compilation cache, which every drol-diag process turns on before JAX starts
(drol_diag.platform.compilation_cache_settings): where it lives, how it is turned off, that the user's own JAX
setting wins, and that a second process finds every program the first compiled there."""

from __future__ import annotations

import os
import subprocess
import sys

from drol_diag.platform import COMPILE_CACHE_MAX_BYTES, COMPILE_CACHE_VARIABLE, compilation_cache_settings

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
