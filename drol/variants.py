"""The ablation variants: each is DROL with one thing changed, named by what it changes.

A variant is a method ("drol" or "fql") plus the config fields it fixes. `drol.config.resolve`
applies them; the learner only ever sees config fields (latents, routing, refresh_interval, ...),
never variant names. `refresh-N` is a family: any N >= 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Variant:
    """An ablation: its name, a one-line meaning, the method it trains and the fields it fixes."""

    name: str
    meaning: str
    method: str = "drol"  # "drol" (drol.learner) or "fql" (drol.fql)
    fixed: dict[str, Any] = field(default_factory=dict)  # config fields the variant sets; users may not override them


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("dynamic", "the paper's method: K fresh latents every step, nearest candidate owns the data action, "
            "recomputed every step", fixed=dict(latents="fresh", routing="nearest", refresh_interval=1)),
    Variant("static-routing", "pointwise correspondence: fixed latent bank per transition, owner computed once at "
            "initialisation and never again", fixed=dict(latents="bank", routing="nearest", refresh_interval=0)),
    Variant("dynamic-bank", "fixed latent bank per transition, owner recomputed every step (recomputing without "
            "resampling)", fixed=dict(latents="bank", routing="nearest", refresh_interval=1)),
    Variant("refresh-N", "fixed latent bank per transition, owners recomputed every N steps (e.g. refresh-1000): "
            "between static and dynamic", fixed=dict(latents="bank", routing="nearest")),
    Variant("random-routing", "fresh latents, owner drawn uniformly at random instead of the nearest (winner-only "
            "without nearest)", fixed=dict(latents="fresh", routing="random", refresh_interval=1)),
    Variant("soft-routing", "fresh latents, every candidate weighted by softmin(distance / --routing-temperature) "
            "instead of winner-only", fixed=dict(latents="fresh", routing="soft", refresh_interval=1)),
    Variant("all-candidates", "fresh latents, BC and critic guidance on every candidate with equal weight (no "
            "routing)", fixed=dict(latents="fresh", routing="uniform", refresh_interval=1)),
    Variant("bc-only", "DROL without the critic term (q_coef 0)",
            fixed=dict(latents="fresh", routing="nearest", refresh_interval=1, q_coef=0.0)),
    Variant("critic-only", "DROL without the BC term (bc_coef 0)",
            fixed=dict(latents="fresh", routing="nearest", refresh_interval=1, bc_coef=0.0)),
    Variant("fql", "the FQL baseline: flow BC policy (10 Euler steps) distilled into a one-step actor with "
            "alpha, same critic (no candidates)", method="fql"),
)}

REFRESH = re.compile(r"refresh-(\d+)")


def variant(name: str) -> Variant:
    """The variant called `name` (refresh-N resolved to its N). Raises ValueError naming the valid ones."""
    if name in VARIANTS and name != "refresh-N":
        return VARIANTS[name]
    match = REFRESH.fullmatch(name)
    if match:
        every = int(match[1])
        if every < 1:
            raise ValueError(f"{name}: the refresh interval must be a positive number of updates, e.g. refresh-1000 "
                             "(static-routing is never refreshing)")
        family = VARIANTS["refresh-N"]
        return Variant(name, family.meaning, family.method, {**family.fixed, "refresh_interval": every})
    raise ValueError(f"unknown ablation {name!r}; valid: {', '.join(VARIANTS)} (refresh-N with N >= 1, e.g. "
                     "refresh-1000)")
