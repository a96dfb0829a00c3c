"""The published per-family presets and the sizing profiles (docs/drol-spec.md sections 1, 2 and 5):
`family_preset` (DROL: one of the paper's two columns, `preset`; FQL: its own run commands) and
`profile_settings`, both classifying the task name through drol_diag.tasks.registry.
"""

from __future__ import annotations

from typing import Any

from drol_diag.tasks.minari import d4rl_base
from drol_diag.tasks.registry import task_kind

# The paper's two published columns, one per preset: the DROL* column (each family's tuned K) and the DROL(16)
# column (K 16 everywhere). Source: scripts/production_run_commands.sh of the DROL repository (muzhancun/DROL).
PRESETS: dict[str, str] = {
    "tuned": "the DROL* column: each family's tuned K, bc_coef 0.03 on D4RL antmaze-large-*",
    "k16": "the DROL(16) column: K 16 everywhere, bc_coef 0.1 on D4RL antmaze-large-*",
}
DEFAULT_PRESET = "tuned"

# Per-family settings of the published results (docs/drol-spec.md section 1), DROL* column (its tuned K).
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

# D4RL settings (500k updates), DROL* column; keys are the D4RL dataset names without the version suffix.
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
# Where the DROL(16) column differs from DROL* beyond K: D4RL antmaze-large-* ran with bc_coef 0.1 at K 16.
K16_D4RL_BC_COEF: dict[str, float] = {"antmaze-large-play": 0.1, "antmaze-large-diverse": 0.1}

# FQL (docs/drol-spec.md sections 2 and 5), from FQL's own run commands (README.md of seohongpark/fql): alpha
# per OGBench family (a prefix of the task name), the critic settings per family (discount 0.99 and q_agg mean
# where not listed: FQL's defaults; antmaze-large-navigate keeps 0.99 where DROL uses 0.995), and alpha per
# D4RL dataset.
FQL_ALPHA: dict[str, float] = {
    "antmaze": 10.0, "humanoidmaze": 30.0, "antsoccer": 10.0, "cube-single": 300.0, "cube-double": 300.0,
    "scene": 300.0, "puzzle-3x3": 1000.0, "puzzle-4x4": 1000.0,
}
FQL_OGBENCH_CRITIC: dict[str, dict[str, Any]] = {
    "antmaze-large-navigate": dict(q_agg="min"),
    "antmaze-giant-navigate": dict(discount=0.995, q_agg="min"),
    "humanoidmaze-medium-navigate": dict(discount=0.995),
    "humanoidmaze-large-navigate": dict(discount=0.995),
    "antsoccer-arena-navigate": dict(discount=0.995),
}
FQL_D4RL_PRESETS: dict[str, dict[str, Any]] = {
    "antmaze-umaze": dict(alpha=10.0), "antmaze-umaze-diverse": dict(alpha=10.0),
    "antmaze-medium-play": dict(alpha=10.0), "antmaze-medium-diverse": dict(alpha=10.0),
    "antmaze-large-play": dict(alpha=3.0), "antmaze-large-diverse": dict(alpha=3.0),
    "pen-human": dict(alpha=10000.0, q_agg="min"), "pen-cloned": dict(alpha=10000.0, q_agg="min"),
    "pen-expert": dict(alpha=3000.0, q_agg="min"),
    "door-human": dict(alpha=30000.0, q_agg="min"), "door-cloned": dict(alpha=30000.0, q_agg="min"),
    "door-expert": dict(alpha=30000.0, q_agg="min"),
    "hammer-human": dict(alpha=30000.0, q_agg="min"), "hammer-cloned": dict(alpha=10000.0, q_agg="min"),
    "hammer-expert": dict(alpha=30000.0, q_agg="min"),
    "relocate-human": dict(alpha=10000.0, q_agg="min"), "relocate-cloned": dict(alpha=30000.0, q_agg="min"),
    "relocate-expert": dict(alpha=30000.0, q_agg="min"),
}

PROFILES = ("auto", "smoke", "paper")


def check_preset(preset: str) -> None:
    """Raise ValueError (one line) unless `preset` names a published column (PRESETS)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: "
                         + ", ".join(f"{name} ({meaning})" for name, meaning in PRESETS.items()))


def family_preset(task: str, method: str = "drol", preset: str = DEFAULT_PRESET) -> dict[str, Any]:
    """The published per-family config overrides for `task`, method and column (empty when none apply).

    >>> family_preset("cube-double-play-singletask-task2-v0")["num_candidates"]
    64
    >>> family_preset("cube-double-play-singletask-task2-v0", preset="k16")["num_candidates"]
    16
    >>> family_preset("cube-double-play-singletask-task2-v0", "fql")["alpha"]
    300.0
    """
    check_preset(preset)
    kind = task_kind(task)
    if method == "fql":
        if kind == "ogbench":
            alpha = [a for family, a in FQL_ALPHA.items() if task.startswith(family + "-")]
            critic = [c for family, c in FQL_OGBENCH_CRITIC.items() if task.startswith(family + "-")]
            return {**(critic[0] if critic else {}), **(dict(alpha=alpha[0]) if alpha else {})}
        return dict(FQL_D4RL_PRESETS.get(d4rl_base(task), {})) if kind == "d4rl" else {}
    found: dict[str, Any] | None = None
    if kind == "ogbench":
        found = next((dict(p) for family, p in OGBENCH_PRESETS.items() if task.startswith(family + "-")), None)
    elif kind == "d4rl":
        base = d4rl_base(task)
        name = base if base.startswith("antmaze-") else base.split("-")[0]
        found = dict(D4RL_PRESETS[name]) if name in D4RL_PRESETS else None
        if found is not None and preset == "k16" and base in K16_D4RL_BC_COEF:
            found["bc_coef"] = K16_D4RL_BC_COEF[base]
    if found is not None and preset == "k16":
        found["num_candidates"] = 16
    return found or {}


def profile_settings(profile: str, task: str) -> dict[str, Any]:
    """Network sizes and schedule for a profile, as overrides of DROLConfig and RunConfig fields: `paper` the
    published ones (tasks without any: D4RL's 500k updates), `smoke` a couple of minutes on a CPU, `auto` `paper`
    for benchmark tasks and the one-minute demo's sizing for the embedded ones."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    kind = task_kind(task)
    if profile == "smoke":
        return dict(actor_hidden=(64, 64), critic_hidden=(64, 64), steps=1000, log_interval=100,
                    eval_interval=500, eval_episodes=5, checkpoint_interval=500)
    if profile == "auto" and kind == "synthetic":
        return dict(actor_hidden=(128, 128, 128), critic_hidden=(128, 128, 128), steps=2500,
                    log_interval=500, eval_interval=500, eval_episodes=50, checkpoint_interval=1000)
    steps = 500_000 if kind in ("d4rl", "minari", "custom") else 1_000_000
    if kind == "synthetic":
        steps = 20_000
    return dict(actor_hidden=(512,) * 4, critic_hidden=(512,) * 4, steps=steps,
                log_interval=5_000, eval_interval=min(100_000, steps // 10), eval_episodes=50,
                checkpoint_interval=min(50_000, steps // 10))
