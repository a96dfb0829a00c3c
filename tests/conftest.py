"""Test set-up: the fixture helpers in tests/ are importable, and MuJoCo renders headless."""

import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, os.path.dirname(__file__))
