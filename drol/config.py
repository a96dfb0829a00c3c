"""Configuration of the learners: DROL's and the FQL baseline's hyper-parameters (frozen dataclasses).

`DROLConfig` and `FQLConfig` hold what the learners' maths depends on; defaults are the paper's
(docs/drol-spec.md sections 1 and 2). Being frozen, a resolved configuration can be written to
`config.json` and compared field by field. The schedule of a run, the published per-family presets
and the resolution of options into configs live above the method, in drol_diag.settings.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

ACTION_CLIP_EPS = 1e-5  # dataset actions are clipped to [-1 + eps, 1 - eps] before training
ROUTINGS = ("nearest", "random", "soft", "uniform")  # how data actions are given to candidates (drol.routing)
LATENTS = ("fresh", "bank")  # where the K latents of a state come from each step
Q_AGGS = ("mean", "min")


def validate_shared(config: DROLConfig | FQLConfig) -> None:
    """Checks of the fields DROL and FQL share (networks, optimiser, critic), and every float field finite;
    one-line ValueErrors."""
    for field in dataclasses.fields(config):  # (inf passes the range checks below, nan some of them, and both train)
        value = getattr(config, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{field.name} must be a finite number, got {value}")
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
    """Hyper-parameters of DROL (docs/drol-spec.md section 1). Defaults are the paper's."""

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
    """Hyper-parameters of the FQL baseline (docs/drol-spec.md section 2), defaults as FQL's published runs."""

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



def learner_config_class(method: str) -> type[DROLConfig] | type[FQLConfig]:
    """The config class of a method name ("drol" or "fql")."""
    return FQLConfig if method == "fql" else DROLConfig
