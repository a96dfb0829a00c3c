"""Text helpers shared by the report's questions and sections: numbers with their intervals, run labels, seed
lists, the overlap rule behind every claimed difference, and the `drol-diag sweep` commands that fill what is
missing.

Wording rules: every number is followed by its 95% interval and the seed count; a claim is made only when an
interval supports it (a difference only when intervals do not overlap, an improvement only when the
probability-of-improvement interval excludes 0.5); otherwise the text says the data do not show it.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

import numpy as np

from reports import stats
from reports.analysis import BASELINE_WITHOUT_K
from reports.document import Notice
from reports.runs import Results

# ------------------------------------------------------------------------------------------------
# Numbers and labels


def fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}g}"


def fmt_interval(interval: stats.Interval, i: int = 0, digits: int = 3) -> str:
    """'0.552 [0.471, 0.567]' or '0.552 (no interval: 1 seed)'."""
    point, low, high = interval.at(i)
    if not np.isfinite(point):
        return "n/a"
    if not np.isfinite(low):
        return f"{fmt(point, digits)} (no interval: {interval.runs} seed{'s' if interval.runs != 1 else ''})"
    return f"{fmt(point, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def group_label(ablation: str, k: int) -> str:
    return ablation if ablation == BASELINE_WITHOUT_K else f"{ablation} K={k}"


def seeds_text(seeds: tuple[int, ...] | list[int]) -> str:
    return ",".join(map(str, seeds)) if seeds else "none"


def overlaps(a: stats.Interval, b: stats.Interval) -> bool:
    """Whether two (1,) intervals overlap (or either has none)."""
    if not (a.has_interval and b.has_interval):
        return True
    return not (a.high[0] < b.low[0] or b.high[0] < a.low[0])


def run_ks(groups: Iterable[tuple[str, int]]) -> list[int]:
    """The K values of (ablation, K) groups, ascending, leaving out the baseline that has no K."""
    return sorted({k for a, k in groups if a != BASELINE_WITHOUT_K})


# ------------------------------------------------------------------------------------------------
# Commands that fill what is missing


def fill_command(results: Results, *, ablations: list[str] | None = None, ks: list[int] | None = None,
                 seeds: str | None = None) -> str:
    """The `drol-diag sweep` command that adds the named ablations / K values / seeds to this folder
    with the settings its runs already have (finished groups are skipped by the sweep)."""
    ablations = ablations or results.ablations
    ks = ks or run_ks(results.groups) or [1]
    root = str(results.root)
    parts = ["drol-diag", "sweep"]
    sweep_file = results.root / "sweep.toml"
    if sweep_file.exists():
        parts += ["--from", str(sweep_file)]
    else:
        parts += ["--tasks", ",".join(results.tasks), *results.runs[0].sweep_options]
    parts += ["--ablations", ",".join(ablations), "--k", ",".join(map(str, ks))]
    parts += ["--seeds", seeds or seeds_text(sorted({s for r in results.runs for s in r.seeds}))]
    if seeds:
        parts += ["--force"]
    parts += ["--out", root]
    return " ".join(shlex.quote(p) for p in parts)


def missing(text: str, command: str) -> Notice:
    return Notice("missing", text, command)
