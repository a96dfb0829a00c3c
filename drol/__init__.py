"""DROL, the method layer: pure JAX functions of arrays and parameters (no files, no printing).

Modules: config (frozen configs and published presets), networks, prior, routing, losses,
learner (init / update / scanned chunks / act), tasks (the Task interface, the embedded
`modes` family and OGBench datasets) and evaluation (OGBench episodes).
"""

import os

# Headless machines: without this, importing mujoco-based environments prints GLFW errors.
os.environ.setdefault("MUJOCO_GL", "egl")
