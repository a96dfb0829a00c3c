"""Text helpers shared by the report's questions and sections: numbers with their intervals, run labels, seed
lists, counted nouns, the effect-size wording behind every claimed difference, and the `drol-diag sweep` commands
that fill what is missing.

Wording rules: every number is followed by its 95% interval and the seed count; a claim is made only when an
interval supports it (an improvement only when the probability-of-improvement interval excludes 0.5). A
difference is stated as an effect size, the difference with its own interval and the threshold it is judged
against (`effect_text`): "material" only when the whole interval lies beyond the quantity's threshold
(diagnostics.quantities.REPORTING; scores: stats.SCORE_MATERIAL), else "no material difference". A difference
is never given a cause: the runs vary one setting, they do not isolate a mechanism.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

import numpy as np

from drol_diag.settings.options import OPTIONS
from reports import stats
from reports.analysis import is_baseline
from reports.document import Notice
from reports.runs import Results, base_ablation

# ------------------------------------------------------------------------------------------------
# Numbers and labels


def fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}g}"


def fmt_interval(interval: stats.Interval, i: int = 0, digits: int = 3) -> str:
    """'0.552 [0.471, 0.567]', '0.552 (no interval: 1 seed)', or '0 (the same in all 3 seeds)' where every
    resample gives one value (an interval [0, 0] would read as a measured spread)."""
    point, low, high = interval.at(i)
    if not np.isfinite(point):
        return "n/a"
    if not np.isfinite(low):
        return f"{fmt(point, digits)} (no interval: {plural(interval.runs, 'seed')})"
    if low == high:
        return f"{fmt(point, digits)} (the same in all {plural(interval.runs, 'seed')})"
    return f"{fmt(point, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def plural(count: int, noun: str) -> str:
    """'1 run', '4 runs' (nouns that take an s)."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def effect_text(difference: stats.Interval, threshold: float | None) -> str:
    """A (1,) difference as an effect size judged against its materiality threshold:
    'difference 0.015 [0.009, 0.021]: no material difference (threshold 0.05)', or '...: material (the
    whole interval lies beyond the threshold 0.05)'. Without an interval or a threshold, never material."""
    text = f"difference {fmt_interval(difference)}"
    if threshold is None:
        return f"{text}: not judged material (this quantity has no threshold)"
    if not difference.has_interval:
        return f"{text}: not judged material without an interval (threshold {threshold:g})"
    if stats.is_material(difference, threshold):
        return f"{text}: material (the whole interval lies beyond the threshold {threshold:g})"
    return f"{text}: no material difference (threshold {threshold:g})"


def group_label(ablation: str, k: int) -> str:
    return ablation if is_baseline(ablation) else f"{ablation} K={k}"


def seeds_text(seeds: tuple[int, ...] | list[int]) -> str:
    return ",".join(map(str, seeds)) if seeds else "none"


def run_ks(groups: Iterable[tuple[str, int]]) -> list[int]:
    """The K values of (ablation, K) groups, ascending, leaving out the baseline that has no K."""
    return sorted({k for a, k in groups if not is_baseline(a)})


# ------------------------------------------------------------------------------------------------
# Commands that fill what is missing


# The settings `drol-diag run --resume` may change in a run folder (the sweep requires every other one to match
# its sweep file): a sweep file written before a run was extended holds stale values of these.
RESUMABLE_SETTINGS = ("steps", "eval_interval", "eval_episodes", "log_interval", "checkpoint_interval")


def fill_command(results: Results, *, ablations: list[str] | None = None, ks: list[int] | None = None,
                 seeds: str | None = None) -> str:
    """The `drol-diag sweep` command that adds the named ablations / K values / seeds to this folder
    with the settings its runs already have (finished groups are skipped by the sweep).

    The settings are those of the run with the most planned steps (its config.json), on top of
    `DIR/sweep.toml` when there is one: a run extended with `run --resume --steps N` after the sweep
    keeps the sweep file's other settings, and shorter runs are extended to N, so that the sweep
    planner accepts the command and the new groups are comparable."""
    ablations = list(dict.fromkeys(base_ablation(a) for a in ablations or results.ablations))  # (grid labels)
    ks = ks or run_ks(results.groups) or [1]
    root = str(results.root)
    template = max(results.runs, key=lambda r: r.steps_planned)
    parts = ["drol-diag", "sweep"]
    sweep_file = results.root / "sweep.toml"
    if sweep_file.exists():
        parts += ["--from", str(sweep_file), *option_pairs(template.sweep_options, RESUMABLE_SETTINGS)]
    else:
        parts += ["--tasks", ",".join(results.tasks), *template.sweep_options]
    parts += ["--ablations", ",".join(ablations), "--k", ",".join(map(str, ks))]
    parts += ["--seeds", seeds or seeds_text(sorted({s for r in results.runs for s in r.seeds}))]
    if seeds:
        parts += ["--force"]
    parts += ["--out", root]
    return " ".join(shlex.quote(p) for p in parts)


def option_pairs(options: tuple[str, ...], names: tuple[str, ...]) -> list[str]:
    """The `--flag value` pairs of the options `names` (drol_diag.settings.options.OPTIONS) among
    command-line `options`."""
    flags = {OPTIONS[name].cli_flag for name in names}
    return [word for i, flag in enumerate(options) if flag in flags for word in options[i:i + 2]]


def missing(text: str, command: str) -> Notice:
    return Notice("missing", text, command)
