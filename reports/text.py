"""Text helpers of the report: numbers with their intervals, labels, counted nouns, the verdict wording
(docs/reading-the-report.md) and the `drol-diag sweep` commands that fill what is missing. A difference is never
given a cause: the runs vary one setting, not a mechanism.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

import numpy as np

from drol_diag.settings.options import OPTIONS
from reports import stats
from reports.analysis import is_baseline
from reports.document import Notice
from reports.runs import Results

# ------------------------------------------------------------------------------------------------
# Numbers and labels


def fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}g}"


def fmt_interval(interval: stats.Interval, i: int = 0, digits: int = 3, bare: bool = False) -> str:
    """'0.552 [0.471, 0.567]'; '0.552 (n=2)' below stats.MIN_RUNS seeds; '0 (in every resample of the 5 seeds)'
    where every resample gives one value (`bare`: '0', as in a table's cell)."""
    point, low, high = interval.at(i)
    if not np.isfinite(point) or bare and np.isfinite(low) and low == high:
        return fmt(point, digits)
    if interval.runs < stats.MIN_RUNS or not np.isfinite(low):
        return f"{fmt(point, digits)} (n={interval.runs})"
    if low == high:
        return f"{fmt(point, digits)} (in every resample of the {plural(interval.runs, 'seed')})"
    return f"{fmt(point, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def plural(count: int, noun: str) -> str:
    """'1 run', '4 runs' (nouns that take an s)."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def effect_text(difference: stats.Interval, threshold: float | None, null: float = 0.0,
                what: str = "difference") -> str:
    """A (1,) difference read by stats.verdict, with its interval, seeds and threshold: 'difference 0.12 [0.08,
    0.16], 5 seeds: material (the whole interval lies beyond +-0.05)'; `null`: 0.5 for a probability."""
    verdict = stats.verdict(difference, threshold, null)
    text = f"{what} {fmt_interval(difference)}"
    if verdict == stats.NOT_JUDGED:
        return f"{text}: not judged (this quantity has no threshold)"
    if verdict == stats.TOO_FEW:
        return (f"{text}: no verdict with {plural(difference.runs, 'seed')} (below {stats.MIN_RUNS} seeds a "
                "bootstrap interval is not informative)")
    text += f", {plural(difference.runs, 'seed')}: {verdict}"
    band = f"{fmt(null)} +- {threshold:g}" if null else f"+-{threshold:g}"  # '0.5 +- 0.1' around a nonzero null
    if verdict == stats.MATERIAL:
        return f"{text} (the whole interval lies beyond {band})"
    if verdict == stats.NEGLIGIBLE:
        return f"{text} (the whole interval lies within {band})"
    needed = stats.runs_to_settle(difference, threshold, null)
    settle = (f"about {needed} seeds per side would settle it at this spread" if needed is not None
              else "its estimate sits on the threshold")
    return f"{text} (the interval reaches both within and beyond {band}; {settle})"


def worded(difference: stats.Interval, threshold: float | None, above: str, below: str, negligible: str,
           inconclusive: str, too_few: str = "", null: float = 0.0) -> str:
    """The words for a (1,) difference read by stats.verdict: `above` or `below` the null where material, else
    `negligible`, `inconclusive`, or `too_few` (too few seeds, or no threshold)."""
    reading = stats.verdict(difference, threshold, null)
    if reading == stats.MATERIAL:
        return above if difference.point[0] > null else below
    return {stats.NEGLIGIBLE: negligible, stats.INCONCLUSIVE: inconclusive}.get(reading, too_few)


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
    """The `drol-diag sweep` command that adds the named ablations / K values / seeds to this folder with the
    settings of its run with the most planned steps, on top of `DIR/sweep.toml` where there is one."""
    ablations = list(dict.fromkeys(results.point(a).ablation for a in ablations or results.ablations))
    ks = ks or run_ks(results.groups) or [1]
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
    parts += ["--out", str(results.root)]
    return " ".join(shlex.quote(p) for p in parts)


def option_pairs(options: tuple[str, ...], names: tuple[str, ...]) -> list[str]:
    """The `--flag value` pairs of the options `names` (drol_diag.settings.options.OPTIONS) among `options`."""
    flags = {OPTIONS[name].cli_flag for name in names}
    return [word for i, flag in enumerate(options) if flag in flags for word in options[i:i + 2]]


def missing(text: str, command: str) -> Notice:
    return Notice("missing", text, command)
