"""A run's settings: the schedule (`RunConfig`) and the resolution of options into configs, later winning: the
paper's defaults (drol.config), the family preset, the profile, the user's options, what the ablation fixes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from drol.config import FQLConfig, LearnerConfig, learner_config_class
from drol.variants import variant
from drol_diag.settings.options import DEFAULT_PROBES, RESTRICTED, applies_to
from drol_diag.settings.presets import DEFAULT_PRESET, check_preset, family_preset, profile_settings

# JAX's precision levels for float32 matmuls (jax.lax.Precision): on GPUs "default" and "high" may use
# TF32 tensor cores (Ampere and newer), "highest" computes in float32; XLA:CPU computes in float32 at every level.
MATMUL_PRECISIONS = ("default", "high", "highest")
DENSITY_MODES = ("auto", "off")  # --density
MAX_STEPS = 2**31 - 1  # updates per seed: the training state counts them in int32 (drol.learner.TrainState.step)


@dataclass(frozen=True)
class RunConfig:
    """One training run (several seeds trained together): its schedule and what it records where."""

    task: str = "modes-2d"  # modes-2d/5d, OGBench single-task, D4RL name, Minari id, npz:PATH, module:factory
    ablation: str = "dynamic"  # variant (drol.variants): dynamic is the paper's method
    seeds: tuple[int, ...] = (0, 1, 2)  # seed numbers; each seed's key is fold_in(key(0), seed)
    steps: int = 3000  # gradient updates per seed
    log_interval: int = 250  # updates between metric rows (also the length of one compiled chunk)
    eval_interval: int = 1000  # updates between evaluations
    eval_episodes: int = 50  # episodes per evaluation (OGBench); fresh states scale for `modes`
    checkpoint_interval: int = 1000  # updates between checkpoints of the whole training state
    profile: str = "auto"  # sizing profile the run was resolved from
    preset: str = DEFAULT_PRESET  # published column the family preset came from: tuned (DROL*) or k16 (DROL(16))
    matmul_precision: str = "default"  # float32 matmuls: one of MATMUL_PRECISIONS (jax_default_matmul_precision)
    grid_settings: tuple[str, ...] = ()  # settings a sweep's grid varies: the run folder's name carries their values
    diagnostics: bool = True  # record the probe diagnostics (diagnostics.hooks) in every log row
    probes: int = DEFAULT_PROBES  # probe transitions per seed for the diagnostics
    density: str = "auto"  # one of DENSITY_MODES: the learned behaviour density (diagnostics.density) or none
    wandb: str | None = None  # W&B project each seed is also logged to (training.tracking); None: none

    def validate(self) -> None:
        """Raise ValueError with a one-line message naming the bad field and the valid range."""
        variant(self.ablation)  # raises for unknown names
        check_preset(self.preset)
        if not self.seeds:
            raise ValueError("at least one seed is needed, e.g. --seeds 0,1,2 or --seeds 0-4")
        if len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be distinct non-negative integers, got {list(self.seeds)}")
        if self.density not in DENSITY_MODES:
            raise ValueError(f"--density must be one of {', '.join(DENSITY_MODES)}, got {self.density!r}")
        if self.matmul_precision not in MATMUL_PRECISIONS:
            raise ValueError(f"--matmul-precision must be one of {', '.join(MATMUL_PRECISIONS)}, got "
                             f"{self.matmul_precision!r}")
        for name in ("steps", "log_interval", "eval_interval", "eval_episodes", "checkpoint_interval", "probes"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be a positive integer, got {value}")
        if self.steps > MAX_STEPS:
            raise ValueError(f"--steps must be at most {MAX_STEPS} (the trainer counts updates in int32), got "
                             f"{self.steps}")


def option_applies(ablation: str, name: str) -> bool:
    """Whether setting `name` means anything for `ablation`: a RunConfig field, or one of its method's config
    that, if only some variants take it, this one does.

    >>> option_applies("fql", "alpha"), option_applies("fql", "bc_coef")
    (True, False)
    >>> option_applies("dynamic", "routing_temperature"), option_applies("soft-routing", "routing_temperature")
    (False, True)
    """
    chosen = variant(ablation)
    config_class = learner_config_class(chosen.method)
    if name in {f.name for f in dataclasses.fields(RunConfig)}:
        return True
    if name not in {f.name for f in dataclasses.fields(config_class)}:
        return False
    return name not in RESTRICTED or chosen.name in applies_to(name)


def resolve(task: str, profile: str = "auto", **overrides: Any) -> tuple[LearnerConfig, RunConfig]:
    """Build the configs for a task and ablation (`ablation=`, default dynamic) in the module's order.
    `overrides`: fields of the method's config or RunConfig (None ignored). Raises ValueError for unknown fields,
    invalid values, and overrides of a field the ablation fixes or its method lacks (e.g. --k with fql)."""
    ablation = variant(overrides.get("ablation") or "dynamic")
    config_class = learner_config_class(ablation.method)
    learner_fields = {f.name for f in dataclasses.fields(config_class)}
    run_fields = {f.name for f in dataclasses.fields(RunConfig)}
    given = {k: v for k, v in overrides.items() if v is not None}
    if ablation.method == "fql" and given.get("num_candidates") == 1:
        given.pop("num_candidates")  # K = 1 is what FQL is
    for name in sorted(set(given) & set(ablation.fixed)):
        if given[name] != ablation.fixed[name]:
            raise ValueError(f"{ablation.name} fixes {name} to {ablation.fixed[name]}; drop that option or choose "
                             "another ablation")
    for name in sorted(set(given) & RESTRICTED):
        if not option_applies(ablation.name, name):
            takers = applies_to(name)
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
    merged.update(family_preset(task, ablation.method, given.get("preset", DEFAULT_PRESET)))
    merged.update(profile_settings(profile, task))
    merged.update(given)
    merged.update(ablation.fixed)
    learner = config_class(**{k: v for k, v in merged.items() if k in learner_fields})
    run = RunConfig(task=task, profile=profile,
                    **{k: v for k, v in merged.items() if k in run_fields and k not in ("task", "profile")})
    learner.validate()
    run.validate()
    unknown_grid = [name for name in run.grid_settings if name not in learner_fields]
    if len(set(run.grid_settings)) != len(run.grid_settings):
        raise ValueError(f"--grid-settings {','.join(run.grid_settings)} names a setting twice; name each once")
    if unknown_grid:
        raise ValueError(f"--grid-settings {','.join(unknown_grid)}: not a setting of {ablation.name}'s learner; "
                         f"name its learner settings, e.g. {', '.join(sorted(learner_fields)[:4])}")
    return learner, run
