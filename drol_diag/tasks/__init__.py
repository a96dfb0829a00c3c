"""Tasks: what a learner trains on and how a policy is scored (layer 1, above the method).

- `base`: the Task interface and its validation;
- one module per source: `modes`, `arc`, `cliff` (the embedded one-step families, with ground truth;
  their shared parts in `onestep`), `corridor` (the embedded multi-step family, with ground truth),
  `ogbench`, `minari` (D4RL through Minari and any local Minari dataset), `custom` (npz:PATH and
  package.module:factory);
- `episodes`: the pool of environment worker processes that runs evaluation episodes;
- `registry`: one classification of a task name, used by presets, checks, loading and folder names.
"""

import os

# Headless machines: without this, creating a MuJoCo environment tries GLFW and prints errors.
os.environ.setdefault("MUJOCO_GL", "egl")

from drol_diag.tasks.base import DATASET_KEYS, Evaluator, Policy, Task, validate_dataset  # noqa: E402
from drol_diag.tasks.registry import check_task, load_task, task_folder_name, task_kind, task_source  # noqa: E402

__all__ = ["DATASET_KEYS", "Evaluator", "Policy", "Task", "validate_dataset", "check_task", "load_task",
           "task_folder_name", "task_kind", "task_source"]
