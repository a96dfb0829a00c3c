"""Process start-up settings that must come before JAX starts its backend: called by the command
line's entry point and by the benchmarks (never as an import side effect)."""

from __future__ import annotations

import os

YNN_FUSION_FLAG = "--xla_cpu_experimental_ynn_fusion_type"


def prefer_fast_cpu_dots() -> None:
    """Turn XLA:CPU's YNNPACK fusions off (measured: +40% updates/s at 4x64, +3% at 4x512 on a
    2-core Zen 4; see benchmarks/throughput.py). Only for the jaxlib line known to have the flag
    (an unknown XLA flag aborts the process), only if the user has not set it, and only before
    JAX's backend starts."""
    from importlib import metadata

    try:
        major, minor = (int(p) for p in metadata.version("jaxlib").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if (major, minor) == (0, 10) and YNN_FUSION_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {YNN_FUSION_FLAG}=".strip()


def start_process() -> None:
    """Everything a drol-diag process sets before it imports JAX or MuJoCo: headless MuJoCo
    rendering (EGL) and the CPU flag above."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    prefer_fast_cpu_dots()
