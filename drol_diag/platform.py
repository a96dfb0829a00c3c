"""Process start-up settings that must come before JAX starts its backend: called by the command
line's entry point and by the benchmarks (never as an import side effect)."""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from typing import Any

YNN_FUSION_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
# The environment variables that choose a run process's GPU and JAX's memory pool on it (a sweep sets them
# for each group: ablations.gpus; Ray sets CUDA_VISIBLE_DEVICES for a GPU task); config.json records them.
GPU_ENVIRONMENT = ("CUDA_VISIBLE_DEVICES", "XLA_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_MEM_FRACTION",
                   "XLA_PYTHON_CLIENT_PREALLOCATE")
NO_CUDA_DEVICES = ("", "-1", "NoDevFiles")  # CUDA_VISIBLE_DEVICES values that hide every GPU from CUDA


def accelerator_plugins() -> tuple[str, ...]:
    """The PJRT plugins JAX will find when it starts (what jax._src.xla_bridge.discover_pjrt_plugins reads,
    read here without importing JAX): the `jax_plugins` entry points and modules, e.g. ('xla_cuda12',) once
    `pip install 'drol-diag[cuda12]'` installed jax-cuda12-plugin; () for the CPU-only jaxlib."""
    import importlib.util
    import pkgutil
    from importlib import metadata

    names = {entry.name for entry in metadata.entry_points(group="jax_plugins")}
    spec = importlib.util.find_spec("jax_plugins")
    if spec is not None and spec.submodule_search_locations:
        names.update(module.name for module in pkgutil.iter_modules(spec.submodule_search_locations))
    return tuple(sorted(names))


def nvidia_devices_present() -> bool:
    """Whether this machine shows NVIDIA GPUs (the driver's device files /dev/nvidia0, /dev/nvidia1, ...)."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def cpu_backend_expected(environ: Mapping[str, str], plugins: Sequence[str], nvidia_present: bool) -> bool:
    """Whether JAX will run this process on its CPU backend, decided before JAX starts (starting it to ask
    jax.default_backend() would fix XLA_FLAGS too early, and in a sweep's parent it would claim GPU memory
    that its group processes need): JAX_PLATFORMS when set (its first platform); else CPU unless an
    accelerator plugin is installed (`plugins`, accelerator_plugins()), a CUDA plugin counting only while
    CUDA_VISIBLE_DEVICES leaves it a GPU and the machine shows one (`nvidia_present`).

    >>> cpu_backend_expected({}, (), False), cpu_backend_expected({"JAX_PLATFORMS": "cuda,cpu"}, (), False)
    (True, False)
    >>> cuda = ("xla_cuda12",)
    >>> cpu_backend_expected({}, cuda, True), cpu_backend_expected({"CUDA_VISIBLE_DEVICES": ""}, cuda, True)
    (False, True)
    """
    platforms = environ.get("JAX_PLATFORMS", "").strip().lower()
    if platforms:
        return platforms.split(",")[0].strip() == "cpu"
    for plugin in plugins:
        if "cuda" not in plugin.lower():
            return False  # ROCm, TPU, ...: JAX prefers the accelerator
        if nvidia_present and environ.get("CUDA_VISIBLE_DEVICES", "all").strip() not in NO_CUDA_DEVICES:
            return False
    return True


def cpu_backend_here() -> bool:
    """cpu_backend_expected for this process: its environment, the installed plugins, this machine's GPUs."""
    return cpu_backend_expected(os.environ, accelerator_plugins(), nvidia_devices_present())


def prefer_fast_cpu_dots() -> None:
    """Turn XLA:CPU's YNNPACK fusions off (measured: +40% updates/s at 4x64, +3% at 4x512 on a
    2-core Zen 4; see benchmarks/throughput.py). Only when the process will run on the CPU backend
    (cpu_backend_expected), only for the jaxlib line known to have the flag (an unknown XLA flag aborts
    the process), only if the user has not set it, and only before JAX's backend starts."""
    from importlib import metadata

    try:
        major, minor = (int(p) for p in metadata.version("jaxlib").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if (major, minor) != (0, 10) or YNN_FUSION_FLAG in flags:
        return
    if cpu_backend_here():
        os.environ["XLA_FLAGS"] = f"{flags} {YNN_FUSION_FLAG}=".strip()


COMPILE_CACHE_VARIABLE = "DROL_DIAG_COMPILE_CACHE"  # a folder for JAX's compilation cache, or "off"
COMPILE_CACHE_MAX_BYTES = 2 * 1024**3  # least recently used programs are evicted beyond this


def default_compile_cache() -> str:
    """$XDG_CACHE_HOME/drol-diag/jax (~/.cache/drol-diag/jax when XDG_CACHE_HOME is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "drol-diag", "jax")


def compilation_cache_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The JAX variables that turn on its persistent compilation cache, shared by every drol-diag process
    of this user (a sweep's groups compile the same task, evaluation and diagnostic programs again and
    again: measured, a 2000-update group of 8 seeds went from 52 s to 30 s wall). Every program is cached
    (no minimum compile time), in DROL_DIAG_COMPILE_CACHE (default default_compile_cache(); "off": no
    cache), at most COMPILE_CACHE_MAX_BYTES (eviction uses a file lock, so processes share it safely). The
    cache key holds the program, the XLA flags, the backend and the jax version, so a hit is the program that
    would have been compiled: the numbers do not change. {} when off, or when JAX_COMPILATION_CACHE_DIR is
    set (the user's own JAX cache wins).

    >>> compilation_cache_settings({"DROL_DIAG_COMPILE_CACHE": "off"})
    {}
    >>> compilation_cache_settings({"DROL_DIAG_COMPILE_CACHE": "/c"})["JAX_COMPILATION_CACHE_DIR"]
    '/c'
    """
    folder = environ.get(COMPILE_CACHE_VARIABLE, "").strip() or default_compile_cache()
    if folder.lower() == "off" or "JAX_COMPILATION_CACHE_DIR" in environ:
        return {}
    return {"JAX_COMPILATION_CACHE_DIR": folder, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_COMPILATION_CACHE_MAX_SIZE": str(COMPILE_CACHE_MAX_BYTES)}


def start_process() -> None:
    """Everything a drol-diag process sets before it imports JAX or MuJoCo: headless MuJoCo
    rendering (EGL), the CPU flag above and JAX's compilation cache (compilation_cache_settings; the
    variables pass on to a sweep's group processes)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    prefer_fast_cpu_dots()
    for name, value in compilation_cache_settings(os.environ).items():
        os.environ.setdefault(name, value)


def device_record() -> dict[str, Any]:
    """What config.json records of the devices a run used: JAX's devices ("platform:id kind") and the
    GPU_ENVIRONMENT variables that chose them (None where unset). Starts JAX's backend."""
    import jax

    return {"jax_devices": [f"{device.platform}:{device.id} {device.device_kind}" for device in jax.local_devices()],
            "environment": {name: os.environ.get(name) for name in GPU_ENVIRONMENT}}
