"""DROL, the method layer: pure JAX functions of arrays and parameters (no files, no printing).

Modules: config (frozen configs and published presets), networks, prior, routing, losses,
learner (init / update / scanned chunks / act), datasets (the Task interface, the embedded
`modes` family and OGBench datasets) and evaluation (OGBench episodes).
"""

import os

# Headless machines: without this, importing mujoco-based environments prints GLFW errors.
os.environ.setdefault("MUJOCO_GL", "egl")


def _prefer_fast_cpu_dots() -> None:
    """Turn XLA:CPU's YNNPACK fusions off (measured: +40% updates/s at 4x64, +3% at 4x512 on a
    2-core Zen 4; see benchmarks/throughput.py). Only for the jaxlib line known to have the flag
    (an unknown XLA flag aborts the process), only if the user has not set it, and only before
    JAX's backend starts (importing drol first)."""
    from importlib import metadata

    flag = "--xla_cpu_experimental_ynn_fusion_type"
    try:
        major, minor = (int(p) for p in metadata.version("jaxlib").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if (major, minor) == (0, 10) and flag not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {flag}=".strip()


_prefer_fast_cpu_dots()
