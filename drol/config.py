"""Configuration of the DROL learner and of a training run, with the published presets.

`DROLConfig` holds the method's hyper-parameters (what the learner's maths depends on);
`RunConfig` holds the schedule of a run (steps, intervals, seeds). Both are frozen, so a
resolved configuration can be written to `config.json` and compared field by field.

Presets come from ../shared/drol-spec.md section 1: the learner defaults are the paper's,
`family_preset(task)` adds the per-family settings of the published results (bc_coef, the
tuned K of DROL*, discount, q_agg), and `profile_settings` sizes a run (`paper` is the
published size and schedule, `smoke` finishes any task in a couple of minutes on a CPU).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from drol.variants import VARIANT_OPTIONS, VARIANTS, variant

ACTION_CLIP_EPS = 1e-5  # dataset actions are clipped to [-1 + eps, 1 - eps] before training
ROUTINGS = ("nearest", "random", "soft", "uniform")  # how data actions are given to candidates (drol.routing)
LATENTS = ("fresh", "bank")  # where the K latents of a state come from each step
Q_AGGS = ("mean", "min")


def validate_shared(config: DROLConfig | FQLConfig) -> None:
    """Checks of the fields DROL and FQL share (networks, optimiser, critic); one-line ValueErrors."""
    if config.batch_size < 1:
        raise ValueError(f"batch size must be a positive integer, got {config.batch_size}")
    for name in ("actor_hidden", "critic_hidden"):
        widths = getattr(config, name)
        if not widths or any(w < 1 for w in widths):
            raise ValueError(f"{name} must be one or more positive widths, got {widths}")
    if config.num_critics < 1:
        raise ValueError(f"num_critics must be >= 1, got {config.num_critics}")
    if not config.lr >= 0:  # 0 is a control: parameters never change
        raise ValueError(f"learning rate must be >= 0, got {config.lr}")
    if not 0 < config.discount <= 1:
        raise ValueError(f"discount must be in (0, 1], got {config.discount}")
    if not 0 < config.tau <= 1:
        raise ValueError(f"tau must be in (0, 1], got {config.tau}")
    if config.q_agg not in Q_AGGS:
        raise ValueError(f"q_agg must be one of {', '.join(Q_AGGS)}, got {config.q_agg!r}")


@dataclass(frozen=True)
class DROLConfig:
    """Hyper-parameters of DROL (spec section 1). Defaults are the paper's."""

    actor_hidden: tuple[int, ...] = (512, 512, 512, 512)  # actor MLP widths, GELU, no LayerNorm
    critic_hidden: tuple[int, ...] = (512, 512, 512, 512)  # critic MLP widths, GELU + LayerNorm
    num_critics: int = 2  # size of the Q ensemble
    lr: float = 3e-4  # Adam learning rate (actor and critic)
    batch_size: int = 256  # transitions per gradient step
    discount: float = 0.99  # 0.995 for antmaze-giant, humanoidmaze and antsoccer (presets)
    tau: float = 0.005  # Polyak rate of the target critic
    num_candidates: int = 16  # K: latents (candidates) drawn per state every step
    bc_coef: float = 1.0  # weight of the winner-only BC term; tuned per family (presets)
    q_coef: float = 1.0  # weight of the critic-guidance term
    normalize_q_loss: bool = True  # divide L_q by stop_grad(max(mean |Q_min|, 1e-6))
    q_agg: str = "mean"  # how the TD target combines the target ensemble: mean or min
    routing: str = "nearest"  # nearest (top-1), random (uniform owner), soft (softmin weights), uniform (all equal)
    latents: str = "fresh"  # fresh: K new prior samples per state every step; bank: a fixed bank per transition
    refresh_interval: int = 1  # updates between recomputations of the owners; 0: once at initialisation (static)
    routing_temperature: float = 1.0  # soft routing: weights softmin(|c_k - a| / temperature)

    def validate(self) -> None:
        """Raise ValueError with a one-line message naming the bad field and the valid range."""
        if self.num_candidates < 1:
            raise ValueError(f"K (num_candidates) must be >= 1, got {self.num_candidates}")
        validate_shared(self)
        if self.bc_coef < 0 or self.q_coef < 0:
            raise ValueError(f"bc_coef and q_coef must be >= 0, got {self.bc_coef}, {self.q_coef}")
        if self.routing not in ROUTINGS:
            raise ValueError(f"routing must be one of {', '.join(ROUTINGS)}, got {self.routing!r}")
        if self.latents not in LATENTS:
            raise ValueError(f"latents must be one of {', '.join(LATENTS)}, got {self.latents!r}")
        if self.refresh_interval < 0:
            raise ValueError(f"refresh interval must be >= 0 (0: never), got {self.refresh_interval}")
        if self.refresh_interval != 1 and (self.latents != "bank" or self.routing != "nearest"):
            raise ValueError("owners can only be held between steps with fixed latent banks and nearest routing "
                             "(latents='bank', routing='nearest')")
        if not self.routing_temperature > 0:
            raise ValueError(f"--routing-temperature must be > 0, got {self.routing_temperature}")

    @property
    def method(self) -> str:
        return "drol"


@dataclass(frozen=True)
class FQLConfig:
    """Hyper-parameters of the FQL baseline (spec section 2), defaults as FQL's published runs."""

    actor_hidden: tuple[int, ...] = (512, 512, 512, 512)  # one-step actor and flow widths, GELU, no LayerNorm
    critic_hidden: tuple[int, ...] = (512, 512, 512, 512)  # critic MLP widths, GELU + LayerNorm (as DROL)
    num_critics: int = 2  # size of the Q ensemble
    lr: float = 3e-4  # Adam learning rate (flow, actor and critic)
    batch_size: int = 256  # transitions per gradient step
    discount: float = 0.99  # family presets as DROL's
    tau: float = 0.005  # Polyak rate of the target critic
    alpha: float = 10.0  # weight of the one-step distillation term; per family (presets)
    q_coef: float = 1.0  # weight of the critic-guidance term (0 turns it off)
    flow_steps: int = 10  # Euler steps of the flow policy
    normalize_q_loss: bool = False  # off for the published numbers (the authors advise it on for new tasks)
    q_agg: str = "mean"  # TD target over the target ensemble: mean or min

    def validate(self) -> None:
        """Raise ValueError with a one-line message naming the bad field and the valid range."""
        validate_shared(self)
        if self.flow_steps < 1:
            raise ValueError(f"flow_steps must be >= 1, got {self.flow_steps}")
        if self.alpha < 0 or self.q_coef < 0:
            raise ValueError(f"alpha and q_coef must be >= 0, got {self.alpha}, {self.q_coef}")

    @property
    def method(self) -> str:
        return "fql"

    @property
    def num_candidates(self) -> int:
        """FQL's one-step actor is a single candidate: its runs sit at K = 1 beside DROL's."""
        return 1


LearnerConfig = DROLConfig | FQLConfig


@dataclass(frozen=True)
class RunConfig:
    """Schedule of one training run (several seeds trained together)."""

    task: str = "modes-2d"  # task name: modes-2d/5d, OGBench single-task, D4RL name, Minari id, npz:PATH, module:factory
    ablation: str = "dynamic"  # variant (drol.variants): dynamic is the paper's method
    seeds: tuple[int, ...] = (0, 1, 2)  # seed numbers; each seed's key is fold_in(key(0), seed)
    steps: int = 3000  # gradient updates per seed
    log_interval: int = 250  # updates between metric rows (also the length of one compiled chunk)
    eval_interval: int = 1000  # updates between evaluations
    eval_episodes: int = 50  # episodes per evaluation (OGBench); fresh states scale for `modes`
    checkpoint_interval: int = 1000  # updates between checkpoints of the whole training state
    profile: str = "auto"  # sizing profile the run was resolved from

    def validate(self) -> None:
        """Raise ValueError with a one-line message naming the bad field and the valid range."""
        variant(self.ablation)  # raises for unknown names
        if not self.seeds:
            raise ValueError("at least one seed is needed, e.g. --seeds 0,1,2 or --seeds 0-4")
        if len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be distinct non-negative integers, got {list(self.seeds)}")
        for name in ("steps", "log_interval", "eval_interval", "eval_episodes", "checkpoint_interval"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be a positive integer, got {value}")


# Per-family settings of the published results (spec section 1). `num_candidates` is the tuned
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

# FQL's alpha per family (spec section 2); the critic settings (discount, q_agg) are the family's, as DROL's.
FQL_ALPHA: dict[str, float] = {
    "antmaze": 10.0, "humanoidmaze": 30.0, "antsoccer": 10.0, "cube-single": 300.0, "cube-double": 300.0,
    "scene": 300.0, "puzzle-3x3": 1000.0, "puzzle-4x4": 1000.0,
}
FQL_D4RL_ALPHA = {"antmaze": 10.0, "antmaze-large": 3.0}  # D4RL antmaze (large-* 3); adroit has none published here
DROL_ONLY_FIELDS = ("bc_coef", "num_candidates")  # family-preset fields FQL has no use for

PROFILES = ("auto", "smoke", "paper")


D4RL_MINARI_ID_RE = re.compile(r"^D4RL/(?P<env>[-\w]+)/(?P<dataset>[-\w]+?)-v\d+$")  # D4RL/antmaze/umaze-v1


def d4rl_base(task: str) -> str | None:
    """The D4RL dataset name without version that `task` trains on, for D4RL names and the Minari ids
    of D4RL datasets (D4RL/antmaze/umaze-v1 -> antmaze-umaze, D4RL/pen/human-v2 -> pen-human); else None.

    >>> d4rl_base("antmaze-large-play-v2"), d4rl_base("D4RL/door/cloned-v2"), d4rl_base("modes-2d")
    ('antmaze-large-play', 'door-cloned', None)
    """
    match = D4RL_MINARI_ID_RE.fullmatch(task)
    base = f"{match['env']}-{match['dataset']}" if match else re.sub(r"-v\d+$", "", task)
    if "/" not in base and (base in D4RL_PRESETS or base.split("-")[0] in D4RL_PRESETS):
        return base
    return None


def task_kind(task: str) -> str:
    """'modes' (the embedded family), 'd4rl' (D4RL names and the Minari ids of D4RL datasets),
    'minari' (other Minari ids: a '/' in the name), 'custom' (npz:PATH and package.module:factory),
    else 'ogbench'."""
    if task.startswith("modes-"):
        return "modes"
    if d4rl_base(task) is not None:
        return "d4rl"
    if ":" in task:
        return "custom"
    if "/" in task:
        return "minari"
    return "ogbench"


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


def option_applies(ablation: str, name: str) -> bool:
    """Whether setting `name` means anything for `ablation`: a RunConfig field, or a field of the
    ablation's method's config that, if only some variants take it (VARIANT_OPTIONS), this one does.

    >>> option_applies("fql", "alpha"), option_applies("fql", "bc_coef"), option_applies("dynamic", "routing_temperature")
    (True, False, False)
    """
    chosen = variant(ablation)
    config_class = FQLConfig if chosen.method == "fql" else DROLConfig
    if name in {f.name for f in dataclasses.fields(RunConfig)}:
        return True
    if name not in {f.name for f in dataclasses.fields(config_class)}:
        return False
    return name not in VARIANT_OPTIONS or name in chosen.options


def resolve(task: str, profile: str = "auto", **overrides: Any) -> tuple[LearnerConfig, RunConfig]:
    """Build the configs for a task and ablation (`ablation=`, default dynamic): paper defaults <
    family preset < profile < explicit overrides, plus the fields the ablation fixes.

    `overrides` may name any field of the method's config or RunConfig; None values are ignored,
    so a CLI can pass every option through. Raises ValueError for unknown fields, invalid values,
    and overrides of a field the ablation fixes or its method lacks (e.g. --k with fql).
    """
    ablation = variant(overrides.get("ablation") or "dynamic")
    config_class = FQLConfig if ablation.method == "fql" else DROLConfig
    learner_fields = {f.name for f in dataclasses.fields(config_class)}
    run_fields = {f.name for f in dataclasses.fields(RunConfig)}
    given = {k: v for k, v in overrides.items() if v is not None}
    if ablation.method == "fql" and given.get("num_candidates") == 1:
        given.pop("num_candidates")  # K = 1 is what FQL is
    for name in sorted(set(given) & set(ablation.fixed)):
        if given[name] != ablation.fixed[name]:
            raise ValueError(f"{ablation.name} fixes {name} to {ablation.fixed[name]}; drop that option or choose "
                             "another ablation")
    for name in sorted(set(given) & VARIANT_OPTIONS):
        if not option_applies(ablation.name, name):
            takers = [v.name for v in VARIANTS.values() if name in v.options]
            raise ValueError(f"--{name.replace('_', '-')} applies to {', '.join(takers)} only, not {ablation.name}")
    unknown = set(given) - learner_fields - run_fields
    if ablation.method == "fql" and unknown & {"bc_coef", "num_candidates"}:
        raise ValueError("fql has no candidates and no bc_coef (its one-step actor is K = 1; its BC weight is "
                         "--alpha); drop --k / --bc-coef")
    fql_only = unknown & {f.name for f in dataclasses.fields(FQLConfig)}
    if fql_only:
        raise ValueError(f"{', '.join(sorted(fql_only))} applies to the fql ablation only, not {ablation.name}")
    if unknown:
        raise ValueError(f"unknown config fields for {ablation.method}: {', '.join(sorted(unknown))}")
    merged: dict[str, Any] = {}
    merged.update(family_preset(task, ablation.method))
    merged.update(profile_settings(profile, task))
    merged.update(given)
    merged.update(ablation.fixed)
    learner = config_class(**{k: v for k, v in merged.items() if k in learner_fields})
    run = RunConfig(task=task, profile=profile, **{k: v for k, v in merged.items() if k in run_fields and k not in ("task", "profile")})
    learner.validate()
    run.validate()
    return learner, run
