"""The report's sections in order (the verdict summary, the inventory, the questions, the per-task scores and the
published numbers beside this sweep's), and the three summary lines the build prints."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from reports import stats
from reports.analysis import REFERENCE_ABLATION, Analysis
from reports.document import Block, Command, Notice, Paragraph, Section, Table
from reports.published import (
    PAPER_HIDDEN,
    PAPER_SEEDS,
    PAPER_TRANSITIONS,
    PAPER_UPDATES,
    PUBLISHED,
    nearest_column,
    published_family,
)
from reports.questions import (
    question_conflict,
    question_critic,
    question_dynamic_vs_static,
    question_error_bars,
    question_k,
    question_ownership,
    question_support,
    question_truth,
)
from reports.questions.common import (
    STATIC,
    below_reference,
    comparison_sentence,
    get,
    groups_of,
    late_difference,
    material_threshold,
    trend_difference,
    undertrained_notice,
    verdict_counts,
    yardstick,
)
from reports.questions.critic import one_step_task
from reports.questions.grid import question_grid
from reports.questions.k_sensitivity import k_effects
from reports.questions.support import HELD_OUT_OOD, support_estimate
from reports.runs import Results, RunInfo, SkippedRunInfo
from reports.text import fill_command, fmt, fmt_interval, group_label, plural, run_ks, seeds_text

# ------------------------------------------------------------------------------------------------
# Per-task scores, published numbers, inventory


def per_task_section(results: Results, analysis: Analysis) -> Section:
    rows = []
    for (task, ablation, k), scores in analysis.per_task.items():
        rows.append((task, group_label(ablation, k), f"{fmt(scores.mean.point[0])} +- {fmt(scores.std)}",
                     fmt_interval(scores.mean), str(len(scores.seeds)), seeds_text(scores.seeds),
                     seeds_text(scores.not_scored)))
    for task, levels in analysis.references.items():  # the task's reference policies, computed (no spread)
        rows += [(task, f"reference: {name}", fmt(value), "-", "-", "-", "-") for name, value in levels.items()]
    notice = undertrained_notice(results, analysis)
    unpublished = () if published_section(results, analysis) else (Paragraph(
        "None of these runs is a dynamic or fql run on a family the paper published (OGBench families: "
        + ", ".join(PUBLISHED) + "), so no published number is set beside them."),)
    return Section("per-task", "Per-task scores", (*((notice,) if notice else ()), *unpublished, Table(
        "Final score per task and run", ("task", "run", "mean +- std", "mean [95% CI]", "n", "seeds",
                                         "no score (diverged / not evaluated)"), tuple(rows),
        note="score: mean of each seed's last 3 evaluations on the run's schedule; std over seeds (n-1); "
             f"interval: bootstrap over seeds (none below {stats.MIN_RUNS} seeds: n= the seed count)."
             + (" Reference rows: fixed policies scored with the task's own evaluation." if analysis.references
                else "")
             + skipped_note(results)),))


def skipped_note(results: Results) -> str:
    """' Not in this table: the skipped run folders ...' naming the runs they would be, or ''."""
    if not results.skipped:
        return ""
    runs = ", ".join(f"{s.task} {group_label(s.ablation, s.k)}" if s.task else f"{skipped_folder(results, s)} "
                     "(run unknown)" for s in results.skipped)
    return f" Not in this table: the run folders skipped as unreadable (see the run inventory): {runs}."


def skipped_folder(results: Results, skipped: SkippedRunInfo) -> str:
    """A skipped run folder's path relative to the results folder (whole where it is not below it)."""
    relative = os.path.relpath(skipped.run_dir, results.root)
    return skipped.run_dir if relative.startswith("..") or relative == "." else relative


def found_text(results: Results, where: object = "") -> str:
    """'4 run folders found: 3 read, 1 skipped' ('... found under WHERE: ...' given `where`)."""
    under = f" under {where}" if where else ""
    return (f"{plural(results.found, 'run folder')} found{under}: {len(results.runs)} read, "
            f"{len(results.skipped)} skipped")


def published_section(results: Results, analysis: Analysis) -> Section | None:
    """Every run on a published family (any of its singletask tasks) beside the paper's number for the nearest
    column, with how the run differs from the published setting."""
    rows = []
    for task in results.tasks:
        family = published_family(task)
        if family is None:
            continue
        for ablation, k in results.groups:
            scores, run = analysis.per_task.get((task, ablation, k)), results.run(task, ablation, k)
            nearest = nearest_column(family, results.point(ablation).ablation, k)
            if scores is None or run is None or nearest is None:
                continue
            column, paper_k = nearest
            paper = " / ".join(f"{PUBLISHED[family][c][0]:g} +- {PUBLISHED[family][c][1]:g}"
                               for c in column.split(" and "))
            rows.append((task, group_label(ablation, k), f"{column}: {paper}",
                         f"{100 * scores.mean.point[0]:.0f} +- {100 * scores.std:.0f}" if np.isfinite(scores.std)
                         else f"{100 * scores.mean.point[0]:.0f}", setting_differences(run, k, paper_k, scores)))
    if not rows:
        return None
    return Section("published", "Published numbers beside this sweep's", (Table(
        "Success rate (%): the paper's column nearest each run (5 tasks per family, 8 seeds) beside the run's",
        ("task", "run", "paper", "this run (mean +- std over seeds)", "how this run differs from the paper's"),
        tuple(rows),
        note="The paper's numbers average the family's 5 tasks; a single task's number can differ from its "
             "family's. Every difference listed (fewer updates, a smaller dataset or network, another K, fewer "
             "seeds) makes a gap to the paper expected: these rows place the runs, they do not test the paper."),))


def setting_differences(run: RunInfo, k: int, paper_k: int | None, scores) -> str:
    """'updates 20,000 / 1,000,000; networks 256,256 / 512x4; ...' for what differs from the published setting."""
    parts = []
    if run.steps_done != PAPER_UPDATES:
        parts.append(f"updates {run.steps_done:,} / {PAPER_UPDATES:,}")
    if run.hidden != PAPER_HIDDEN:
        parts.append(f"networks {run.hidden} / {PAPER_HIDDEN}")
    if paper_k is not None and k != paper_k:
        parts.append(f"K {k} / {paper_k}")
    if run.transitions is not None and run.transitions != PAPER_TRANSITIONS:
        parts.append(f"dataset {run.transitions:,} / {PAPER_TRANSITIONS:,} transitions")
    if len(scores.seeds) != PAPER_SEEDS:
        parts.append(f"seeds {len(scores.seeds)} / {PAPER_SEEDS}")
    return "; ".join(parts) or "the published setting"


def inventory_section(results: Results) -> Section:
    rows = [(r.task, r.ablation, str(r.k), seeds_text(r.seeds), f"{r.steps_done:,} / {r.steps_planned:,}",
             str(r.evaluations), r.profile, r.hidden, r.git_commit[:12] + ("-dirty" if r.git_commit.endswith("dirty")
                                                                          else ""))
            for r in results.runs]
    blocks: list[Block] = [Paragraph(f"{found_text(results, results.root.resolve())}."),
                           Table("Runs read", ("task", "ablation", "K", "seeds", "steps (done / planned)",
                                               "evaluations", "profile", "hidden", "git commit"), tuple(rows))]
    if results.skipped:
        blocks.append(Notice("warning", f"{len(results.skipped)} of the {results.found} run folders found could not "
                             "be read: they are in no score, table or figure of this report. Each is listed below "
                             "with the reason; repair or re-run it (`drol-diag report --strict` refuses to report "
                             "while any is skipped)."))
        blocks.append(Table("Run folders skipped (path relative to the results folder)",
                            ("run folder", "would be (task, ablation, K)", "reason"),
                            tuple((skipped_folder(results, s),
                                   f"{s.task} {group_label(s.ablation, s.k)}" if s.task
                                   else "unknown (no readable config.json)",
                                   s.reason) for s in results.skipped)))
    unfinished = [f"{r.task} {group_label(r.ablation, r.k)}" for r in results.runs if not r.finished]
    if unfinished:
        blocks.append(Notice("warning", f"Unfinished runs (their scores use the evaluations so far): "
                             f"{', '.join(unfinished)}. Finish them with the same sweep command (it resumes them).",
                             fill_command(results)))
    sweep_file = results.root / "sweep.toml"
    if sweep_file.exists():
        header = [line[len("# command: "):] for line in sweep_file.read_text().splitlines()
                  if line.startswith("# command: ")]
        if header:
            blocks.append(Command("The sweep that produced these runs (recorded in sweep.toml); each run's own "
                                  "`drol-diag run` command is in its config.json", header[0]))
    else:
        for command in dict.fromkeys(r.command for r in results.runs if r.command):
            blocks.append(Command("A run's command (from its config.json)", command))
    return Section("inventory", "Run inventory and commands", tuple(blocks))


@dataclass(frozen=True)
class VerdictRow:
    """One difference of the one-page summary: which question, what is compared, and its reading."""

    question: str
    comparison: str
    difference: stats.Interval
    threshold: float | None
    null: float = 0.0

    @property
    def verdict(self) -> str:
        return stats.verdict(self.difference, self.threshold, self.null)

    def json(self) -> dict:
        point, low, high = self.difference.at(0)
        return {"question": self.question, "comparison": self.comparison, "verdict": self.verdict,
                "point": point, "low": low, "high": high, "seeds": self.difference.runs,
                "threshold": self.threshold, "null": self.null}


def verdict_rows(results: Results, analysis: Analysis) -> list[VerdictRow]:
    """The headline differences of questions 1-5, each as its question reads it (and from the same bootstraps,
    Analysis.cached)."""
    rows = []
    for task in results.tasks:
        for label, k in groups_of(results, REFERENCE_ABLATION):
            run = f"{task}, {group_label(label, k)}"
            flips, excess = get(analysis, "flip_rate", task, label, k), get(analysis, "return_excess", task, label, k)
            if flips is not None and flips.has_trend and k > 1:
                rows.append(VerdictRow("1. ownership settles", f"{run}: flip rate, late minus early",
                                       trend_difference(analysis, flips), material_threshold("flip_rate")))
            if excess is not None and k > 1:
                rows.append(VerdictRow("1. back and forth", f"{run}: returns minus chance, late", excess.late,
                                       material_threshold("return_excess")))
            share = support_estimate(results, analysis, task)[0]
            for variable, question in ((share, "2. off the support"), ("conflict_frac", "3. conflict")):
                difference = late_difference(results, analysis, variable, task, label, k)
                if difference is not None:
                    rows.append(VerdictRow(question, f"{run} minus static-routing: {variable}, late", difference,
                                           material_threshold(variable)))
        share = support_estimate(results, analysis, task)[0]
        for ablation, k in results.groups:
            ood = get(analysis, share, task, ablation, k)
            if ood is not None:
                rows.append(VerdictRow("2. off the support", f"{task}, {group_label(ablation, k)}: {share} late "
                                       f"minus held-out data's {HELD_OUT_OOD:g}", ood.late.minus(HELD_OUT_OOD),
                                       material_threshold(share)))
    for key, difference in analysis.score_difference.items():
        x, kx, y, ky = key
        rows.append(VerdictRow("4. dynamic vs " + ("static" if results.point(y).ablation == STATIC else "controls"),
                               f"{group_label(x, kx)} minus {group_label(y, ky)}: IQM score over "
                               f"{', '.join(analysis.matched[key].tasks)}", difference, stats.SCORE_MATERIAL))
    for ablation in results.ablations:
        _, best, effects = k_effects(results, analysis, ablation) or (None, None, {})
        rows += [VerdictRow("5. sensitivity to K", f"{ablation}: IQM at K={k} minus at K={best} (the highest)",
                            difference, stats.SCORE_MATERIAL) for k, difference in effects.items()]
    return rows


def verdict_section(results: Results, analysis: Analysis, rows: list[VerdictRow]) -> Section:
    """The one-page summary: every headline difference with its verdict, interval and seeds."""
    counts = {v: sum(r.verdict == v for r in rows) for v in (stats.MATERIAL, stats.NEGLIGIBLE, stats.INCONCLUSIVE,
                                                              stats.TOO_FEW)}
    lead = Paragraph(f"{plural(len(rows), 'difference')} read: " + ", ".join(
        f"{count} {verdict}" for verdict, count in counts.items() if count) + ". Material: the whole 95% interval "
        "beyond the quantity's threshold; negligible: within it; inconclusive: otherwise (not 'no difference'); "
        f"below {stats.MIN_RUNS} seeds per side, no verdict (section 6).") if rows else Paragraph(
        "These runs allow no comparison yet: each question below says what to run.")
    table = Table("Verdicts, one row per difference read (the text of each question follows)",
                  ("question", "comparison", "verdict", "difference [95% CI]", "threshold", "seeds"),
                  tuple((r.question, r.comparison, r.verdict, fmt_interval(r.difference),
                         "-" if r.threshold is None else f"+-{r.threshold:g}", str(r.difference.runs))
                        for r in rows))
    return Section("verdicts", "Summary of verdicts", (lead, table) if rows else (lead,))


def all_sections(results: Results, analysis: Analysis, verdicts: list[VerdictRow]) -> tuple[Section, ...]:
    return (verdict_section(results, analysis, verdicts), inventory_section(results),
            question_ownership(results, analysis), question_support(results, analysis),
            question_conflict(results, analysis), question_dynamic_vs_static(results, analysis),
            question_k(results, analysis), *((question_grid(results, analysis),) if results.grid else ()),
            question_error_bars(results, analysis), question_truth(results, analysis),
            *((question_critic(results, analysis),) if not all(one_step_task(results, task) for task in results.tasks)
              else ()),
            per_task_section(results, analysis),
            *filter(None, (published_section(results, analysis),)))


def summary_lines(results: Results, analysis: Analysis) -> tuple[str, str, str]:
    """Three lines: what was read, the count of verdicts over every dynamic-vs-static comparison (never one
    chosen comparison), the highest IQM with the state of that run against its yardstick."""
    seeds = sorted({len(r.seeds) for r in results.runs})
    read = (f"{found_text(results)}; {plural(len(results.tasks), 'task')}, ablations {', '.join(results.ablations)}, "
            f"K {seeds_text(run_ks(results.groups)) or '-'}, {'/'.join(map(str, seeds))} "
            f"seed{'' if seeds == [1] else 's'} each")
    static = [key for key in analysis.improvement if results.point(key[2]).ablation == STATIC]
    if len(static) == 1:
        versus = comparison_sentence(results, analysis, static[0]).rstrip(".")
    elif static:
        versus = (f"dynamic vs static-routing, {len(static)} comparisons (each K and grid point, over the tasks both "
                  f"ran): {verdict_counts(analysis, static, 'dynamic', 'static-routing')}")
    elif any(s.ablation in ("dynamic", STATIC) for s in results.skipped):
        versus = ("dynamic vs static-routing: not compared, a run folder of one of them was skipped as unreadable "
                  "(see the inventory)")
    else:
        versus = "dynamic vs static-routing: not run (see section 4 for the command)"
    if analysis.groups:
        (a, k), g = max(analysis.groups.items(), key=lambda item: item[1].aggregates.point[0])
        label = group_label(a, k)
        best = f"highest IQM: {label} {fmt_interval(g.aggregates)} over {', '.join(g.matrix.tasks)}"
        states = [(task, state) for task, runs in below_reference(results, analysis).items()
                  for run, _, state in runs if run == label]
        if states:
            best += " (below the best reference on " + ", ".join(
                f"{task}: {'undertrained, still rising' if state == 'still rising' else state}"
                for task, state in states) + ")"
        elif not any(yardstick(results, analysis, task) for task in g.matrix.tasks):
            best += " (no yardstick on its tasks: see section 4)"
    else:
        best = "no evaluation scores in these runs"
    return read, versus, best
