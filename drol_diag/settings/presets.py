"""The published per-family presets and the sizing profiles (docs/drol-spec.md section 1).

`family_preset(task)` gives the per-family settings of the published results (bc_coef, the tuned K
of DROL*, discount, q_agg; FQL's alpha), and `profile_settings` sizes a run (`paper` is the
published size and schedule, `smoke` finishes any task in a couple of minutes on a CPU). Both
classify the task name once, through drol_diag.tasks.registry.
"""

from __future__ import annotations

import re
from typing import Any

from drol_diag.tasks.minari import d4rl_base
from drol_diag.tasks.registry import task_kind

# Per-family settings of the published results (docs/drol-spec.md section 1). `num_candidates` is the tuned
# K of DROL*; pass --k 16 for the DROL(16) column.
OGBENCH_PRESETS: dict[str, dict[str, Any]] = {
    "antmaze-large-navigate": dict(bc_coef=0.03, num_candidates=16, discount=0.995, q_agg="min"),
    "antmaze-giant-navigate": dict(bc_coef=0.03, num_candidates=1, discount=0.995, q_agg="min"),
    "humanoidmaze-medium-navigate": dict(bc_coef=0.3, num_candidates=16, discount=0.995),
    "humanoidmaze-large-navigate": dict(bc_coef=0.3, num_candidates=4, discount=0.995),
    "antsoccer-arena-navigate": dict(bc_coef=0.1, num_candidates=4, discount=0.995),
    "cube-single-play": dict(bc_coef=10.0, num_candidates=16),
    "cube-double-play": dict(bc_coef=3.0, num_candidates=64),
    "scene-play": dict(bc_coef=3.0, num_candidates=64),
    "puzzle-3x3-play": dict(bc_coef=0.3, num_candidates=32),
    "puzzle-4x4-play": dict(bc_coef=10.0, num_candidates=64),
}

# D4RL settings (500k updates); keys are the D4RL dataset names without the version suffix.
D4RL_PRESETS: dict[str, dict[str, Any]] = {
    "antmaze-umaze": dict(bc_coef=0.3, num_candidates=2),
    "antmaze-umaze-diverse": dict(bc_coef=0.1),
    "antmaze-medium-play": dict(bc_coef=0.1, num_candidates=32),
    "antmaze-medium-diverse": dict(bc_coef=0.1),
    "antmaze-large-play": dict(bc_coef=0.03),
    "antmaze-large-diverse": dict(bc_coef=0.03),
    "pen": dict(bc_coef=1.0, num_candidates=16, q_agg="min"),
    "door": dict(bc_coef=10.0, num_candidates=8, q_agg="min"),
    "hammer": dict(bc_coef=3.0, num_candidates=8, q_agg="min"),
    "relocate": dict(bc_coef=10.0, num_candidates=32, q_agg="min"),
}

# FQL's alpha per family (docs/drol-spec.md section 2); the critic settings (discount, q_agg) are the family's,
# as DROL's.
FQL_ALPHA: dict[str, float] = {
    "antmaze": 10.0, "humanoidmaze": 30.0, "antsoccer": 10.0, "cube-single": 300.0, "cube-double": 300.0,
    "scene": 300.0, "puzzle-3x3": 1000.0, "puzzle-4x4": 1000.0,
}
FQL_D4RL_ALPHA = {"antmaze": 10.0, "antmaze-large": 3.0}  # D4RL antmaze (large-* 3); adroit has none published here
DROL_ONLY_FIELDS = ("bc_coef", "num_candidates")  # family-preset fields FQL has no use for

PROFILES = ("auto", "smoke", "paper")


def family_preset(task: str, method: str = "drol") -> dict[str, Any]:
    """The published per-family config overrides for `task` and method (empty when none apply).

    >>> family_preset("cube-double-play-singletask-task2-v0")["num_candidates"]
    64
    >>> family_preset("cube-double-play-singletask-task2-v0", "fql")["alpha"]
    300.0
    """
    if method == "fql":
        preset = {k: v for k, v in family_preset(task).items() if k not in DROL_ONLY_FIELDS}
        kind, base = task_kind(task), d4rl_base(task) or re.sub(r"-v\d+$", "", task)
        if kind == "ogbench":
            alpha = [a for family, a in FQL_ALPHA.items() if base.startswith(family + "-")]
            preset.update(alpha=alpha[0]) if alpha else None
        elif kind == "d4rl" and base.startswith("antmaze-"):
            preset.update(alpha=FQL_D4RL_ALPHA["antmaze-large" if base.startswith("antmaze-large") else "antmaze"])
        return preset
    kind = task_kind(task)
    if kind == "ogbench":
        for family, preset in OGBENCH_PRESETS.items():
            if task.startswith(family + "-"):
                return dict(preset)
    elif kind == "d4rl":
        base = d4rl_base(task)
        name = base if base.startswith("antmaze-") else base.split("-")[0]
        return dict(D4RL_PRESETS.get(name, {}))
    return {}


def profile_settings(profile: str, task: str) -> dict[str, Any]:
    """Network sizes and schedule for a profile, as overrides of DROLConfig and RunConfig fields.

    `paper`: the published sizes and schedule (4x512, 1M updates on OGBench, 500k on D4RL,
    evaluation every 100k updates with 50 episodes). `smoke`: small networks and few updates,
    so any task runs end to end in a couple of minutes on a CPU. `auto`: `paper` for benchmark
    tasks, and for the embedded `modes` family the sizing of the one-minute demo. Tasks with no
    published schedule (other Minari datasets, npz:PATH, package.module:factory) get the paper's
    sizes with D4RL's schedule (500k updates) under `paper` and `auto`.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    kind = task_kind(task)
    if profile == "smoke":
        return dict(actor_hidden=(64, 64), critic_hidden=(64, 64), steps=1000, log_interval=100,
                    eval_interval=500, eval_episodes=5, checkpoint_interval=500)
    if profile == "auto" and kind == "modes":
        return dict(actor_hidden=(128, 128, 128), critic_hidden=(128, 128, 128), steps=2500,
                    log_interval=500, eval_interval=500, eval_episodes=50, checkpoint_interval=1000)
    steps = 500_000 if kind in ("d4rl", "minari", "custom") else 1_000_000
    if kind == "modes":
        steps = 20_000
    return dict(actor_hidden=(512,) * 4, critic_hidden=(512,) * 4, steps=steps,
                log_interval=5_000, eval_interval=min(100_000, steps // 10), eval_episodes=50,
                checkpoint_interval=min(50_000, steps // 10))
