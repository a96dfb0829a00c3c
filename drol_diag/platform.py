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
    """The PJRT plugins JAX will find (as jax._src.xla_bridge.discover_pjrt_plugins, without importing JAX),
    e.g. ('xla_cuda12',); () for the CPU-only jaxlib."""
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
    """Whether JAX will run this process on its CPU backend, decided before JAX starts (starting it would fix
    XLA_FLAGS too early and claim GPU memory): JAX_PLATFORMS's first platform when set; else CPU unless an
    accelerator plugin is installed, a CUDA one counting only while CUDA_VISIBLE_DEVICES leaves it a GPU.

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


def add_cpu_flags(*wanted: str) -> None:
    """Append XLA:CPU flags ("--name=value") to XLA_FLAGS, on the CPU backend only, for the jaxlib line known to
    have them (an unknown flag aborts), each unless XLA_FLAGS already names it (the user's choice stands)."""
    from importlib import metadata

    try:
        major, minor = (int(p) for p in metadata.version("jaxlib").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    added = [flag for flag in wanted if flag.split("=")[0] not in flags]
    if (major, minor) == (0, 10) and added and cpu_backend_here():
        os.environ["XLA_FLAGS"] = " ".join([flags, *added]).strip()


def prefer_fast_cpu_dots() -> None:
    """Turn XLA:CPU's YNNPACK fusions off (+40% updates/s at 4x64: benchmarks/throughput.py)."""
    add_cpu_flags(f"{YNN_FUSION_FLAG}=")


# XLA:CPU flags for a process of many short runs on a cold compilation cache (the test suite sets them): -O0 and
# the loop emitters instead of the MLIR fusion emitters compile a 2x64 init in 0.6 s instead of 5.1 s, but a
# training chunk runs 4-6x slower, so the long loops ask for -O1 back (optimised_compile). Measured on a 2x64
# corridor-2d chunk, 2 cores: compile 2.3 s and 3.7 ms an update at -O0; 3.6 s and 0.9 ms at -O1; 5.9 s and 0.6 ms
# with XLA's defaults (-O3, fusion emitters).
QUICK_COMPILE_FLAGS = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false")
LONG_LOOP_OPTIMISATION = {"xla_backend_optimization_level": 1}


def optimised_compile() -> dict[str, Any]:
    """The compiler options of a program that runs a thousand updates or more (a long run's training chunk, the
    density fit): -O1 where XLA_FLAGS holds QUICK_COMPILE_FLAGS, else {} (XLA's defaults: nothing to undo). For
    jax.jit(compiler_options=) or Lowered.compile."""
    flags = os.environ.get("XLA_FLAGS", "").split()
    return dict(LONG_LOOP_OPTIMISATION) if all(flag in flags for flag in QUICK_COMPILE_FLAGS) else {}


COMPILE_CACHE_VARIABLE = "DROL_DIAG_COMPILE_CACHE"  # a folder for JAX's compilation cache, or "off"
DENSITY_CACHE_VARIABLE = "DROL_DIAG_DENSITY_CACHE"  # the folder of fitted behaviour densities (diagnostics.density)
COMPILE_CACHE_MAX_BYTES = 2 * 1024**3  # least recently used programs are evicted beyond this


def user_cache_folder(name: str) -> str:
    """$XDG_CACHE_HOME/drol-diag/<name> (~/.cache/drol-diag/<name> when XDG_CACHE_HOME is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "drol-diag", name)


def compilation_cache_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The JAX variables that turn on its persistent compilation cache, shared by this user's processes (a
    sweep's groups compile the same programs: 52 s -> 30 s for 8 seeds of 2000 updates), in
    DROL_DIAG_COMPILE_CACHE (default user_cache_folder("jax"); "off": none); a hit is the same program, so
    the numbers do not change. {} when off or when JAX_COMPILATION_CACHE_DIR is set (the user's cache wins).

    >>> compilation_cache_settings({"DROL_DIAG_COMPILE_CACHE": "off"})
    {}
    >>> compilation_cache_settings({"DROL_DIAG_COMPILE_CACHE": "/c"})["JAX_COMPILATION_CACHE_DIR"]
    '/c'
    """
    folder = environ.get(COMPILE_CACHE_VARIABLE, "").strip() or user_cache_folder("jax")
    if folder.lower() == "off" or "JAX_COMPILATION_CACHE_DIR" in environ:
        return {}
    return {"JAX_COMPILATION_CACHE_DIR": folder, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_COMPILATION_CACHE_MAX_SIZE": str(COMPILE_CACHE_MAX_BYTES)}


def start_process() -> None:
    """What a drol-diag process sets before it imports JAX or MuJoCo: EGL, the CPU flag, the compilation cache."""
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
