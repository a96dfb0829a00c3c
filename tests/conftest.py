"""Test set-up: the fixture helpers in tests/ are importable, MuJoCo renders headless, and
compiled XLA programs are cached on disk for the session (tests compile many identical ones)."""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

from drol_diag.platform import start_process  # noqa: E402

start_process()  # as the command line does: MUJOCO_GL, XLA:CPU flags before JAX starts
import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="drol-diag-test-xla-cache-"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
