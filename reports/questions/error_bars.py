"""Question 6: error bars, what every interval rests on: the bootstrap, the seeds behind each run, the verdict
rules and each quantity's materiality threshold with its reason."""

from __future__ import annotations

import numpy as np

from diagnostics.quantities import QUANTITIES, REPORTING
from reports import stats
from reports.analysis import Analysis, run_rows
from reports.document import Block, Notice, Paragraph, Section, Table
from reports.runs import Results
from reports.text import fill_command, group_label, plural, seeds_text


def question_error_bars(results: Results, analysis: Analysis) -> Section:
    table = results.scores
    rows = []
    for task in results.tasks:
        for ablation, k in results.groups:
            part = run_rows(table, task, ablation, k)
            if part.empty:
                continue
            rows.append((task, group_label(ablation, k), str(len(part)), str(int(np.isfinite(part.score).sum())),
                         seeds_text(part[part.diverged].seed.tolist()),
                         seeds_text(part[~part.diverged & ~np.isfinite(part.score)].seed.tolist())))
    diverged = int(table.diverged.sum())
    few = [group_label(a, k) for (a, k), g in analysis.groups.items() if g.matrix.num_runs < stats.MIN_RUNS]
    blocks: list[Block] = [Paragraph(
        f"Every number in this report is given with a 95% percentile stratified bootstrap interval "
        f"({analysis.reps} repetitions; numpy's global generator seeded with {analysis.seed} before each "
        "interval, since rliable resamples with it) and the number of seeds behind it. Aggregates resample runs "
        "within each task (rliable's stratified bootstrap); diagnostics resample seeds. Scores follow the published "
        "protocol: the mean of a seed's last three evaluations on the run's final schedule "
        "(an evaluation a resume moved off that grid is kept in the log, not counted). "
        + (f"{plural(diverged, 'seed run')} diverged (losses became NaN or infinite); they have no score, are left "
           "out of every statistic and are listed below." if diverged else "No seed diverged."))]
    blocks.append(Paragraph(VERDICT_RULES))
    if few:
        blocks.append(Notice("warning", f"Fewer than {stats.MIN_RUNS} seeds for {', '.join(few)}: their numbers are "
                             "shown with their seed count (n=...) and no interval, and no difference involving them "
                             f"is given a verdict. Run at least {stats.MIN_RUNS} seeds:",
                             fill_command(results, seeds=f"0-{stats.MIN_RUNS - 1}")))
    if diverged:
        blocks.append(Notice("warning", f"{plural(diverged, 'seed run')} diverged and are excluded from the "
                             "statistics (see the table); excluding them flatters the variants they belong to."))
    blocks.append(Table("Seeds behind each run", ("task", "run", "seeds", "scored", "diverged", "not evaluated"),
                        tuple(rows)))
    blocks.append(materiality_table({name for name, *_ in analysis.diagnostics}))
    return Section("q6-error-bars", "6. Error bars: what every interval rests on", tuple(blocks))


VERDICT_RULES = (
    "How differences are read. Every difference (between two runs, late minus early, against chance or a reference, "
    "a ratio against 1) is read against its quantity's threshold (the table below) in one of three verdicts: "
    "material when its whole 95% interval lies beyond the threshold on one side; negligible when its whole "
    "interval lies within plus or minus the threshold (an equivalence reading, as two one-sided tests give); "
    "inconclusive otherwise, with the seeds per side that would settle it if the spread stayed as it is. "
    "Inconclusive is not 'no difference'. "
    f"Below {stats.MIN_RUNS} seeds per side no verdict is given: a percentile bootstrap resamples only the seeds "
    "there are, and at 3 seeds one resample in 27 repeats the lowest seed three times (3.7%, more than the 2.5% "
    "tail), so the interval's ends are the lowest and highest seed, not a 95% interval "
    "(docs/reading-the-report.md). A headline counts the "
    "verdicts of every comparison made; with many comparisons a lone material one can arise by chance.")


def materiality_table(shown: set[str] | None = None) -> Table:
    """The threshold from which each reported difference is called material, and why: one row per threshold and
    reason, naming every quantity that shares them (of `shown`, the quantities this report reads; None: all)."""
    shared: dict[tuple[str, str], list[str]] = {(f"{stats.SCORE_MATERIAL:g}", "5 points of normalised score; the "
                                                 "paper's seed-to-seed spread is 2 to 5 points"):
                                                ["score (IQM of one run minus another's)"]}
    for name, r in REPORTING.items():
        if shown is not None and name not in shown:
            continue
        key = ("none" if r.material is None else f"{r.material:g}", r.why)
        shared.setdefault(key, []).append(f"{name} ({QUANTITIES[name].unit})")
    rows = tuple((", ".join(names), threshold, why) for (threshold, why), names in shared.items())
    return Table("When a difference is material", ("quantities", "threshold", "why"), rows,
                 note="Material: the whole 95% interval beyond the threshold; negligible: the whole interval within "
                      "it; inconclusive: otherwise. A difference is never given a cause these runs do not isolate.")
