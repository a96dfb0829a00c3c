"""The report's sections in order: the run inventory, the six referee questions (reports.questions), the diagnostics
against the task's ground truth (reports.questions.truth), the per-task scores and the published numbers beside
this sweep's; and the three summary lines the build prints.

Each question's section answers from the numbers (reports.analysis) or, where the runs cannot answer it, gives
the sweep command that would; the wording rules are in reports.text.
"""

from __future__ import annotations

import os

import numpy as np

from reports.analysis import Analysis
from reports.document import Block, Command, Notice, Paragraph, Section, Table
from reports.published import PAPER_UPDATES, PUBLISHED, published_column, published_family
from reports.questions import (
    question_conflict,
    question_dynamic_vs_static,
    question_error_bars,
    question_k,
    question_ownership,
    question_support,
    question_truth,
)
from reports.questions.common import STATIC, at_point, undertrained, undertrained_notice
from reports.questions.dynamic_vs_static import improvement_verdict
from reports.questions.grid import question_grid
from reports.runs import Results, SkippedRunInfo, base_ablation
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
    return Section("per-task", "Per-task scores", (*((notice,) if notice else ()), Table(
        "Final score per task and run", ("task", "run", "mean +- std", "mean [95% CI]", "n", "seeds",
                                         "no score (diverged / not evaluated)"), tuple(rows),
        note="score: mean of each seed's last 3 evaluations on the run's schedule; std over seeds (n-1); "
             "interval: bootstrap over seeds."
             + (" Reference rows: fixed policies scored with the task's own evaluation; a run below the random "
                "supported mode (or random behaviour action) is undertrained." if analysis.references else "")
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


def published_section(results: Results, analysis: Analysis) -> Section:
    rows = []
    for task in results.tasks:
        family = published_family(task)
        if family is None:
            continue
        for ablation, k in results.groups:
            column = published_column(family, ablation, k)
            scores = analysis.per_task.get((task, ablation, k))
            run = results.run(task, ablation, k)
            if column is None or scores is None or run is None:
                continue
            paper = " / ".join(f"{PUBLISHED[family][c][0]:g} +- {PUBLISHED[family][c][1]:g}"
                               for c in column.replace(" and ", ",").split(","))
            rows.append((family, task, group_label(ablation, k), column, paper,
                         f"{100 * scores.mean.point[0]:.0f} +- {100 * scores.std:.0f}" if np.isfinite(scores.std)
                         else f"{100 * scores.mean.point[0]:.0f}",
                         f"{run.steps_done:,} / {PAPER_UPDATES:,}", f"{len(scores.seeds)} / 8"))
    if not rows:
        families = ", ".join(PUBLISHED)
        return Section("published", "Published numbers", (Paragraph(
            "None of these runs is on a task the paper published (OGBench families: " + families + "), so there "
            "is nothing to set beside its table. Run dynamic (K=16 and the family's tuned K) and fql on e.g. "
            "cube-single-play-singletask-task1-v0 with --profile paper to compare."),))
    return Section("published", "Published numbers beside this sweep's", (Table(
        "Success rate (%), the paper's (5 tasks per family, 8 seeds, 1M updates) beside this sweep's (this task)",
        ("family", "task", "run", "paper column", "paper", "this sweep", "updates (this / paper)",
         "seeds (this / paper)"), tuple(rows),
        note="The paper's numbers average 5 tasks; a single task's number can differ from its family's. "
             "A smaller training budget or fewer seeds than the paper's makes differences expected."),))


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


def all_sections(results: Results, analysis: Analysis) -> tuple[Section, ...]:
    return (inventory_section(results), question_ownership(results, analysis), question_support(results, analysis),
            question_conflict(results, analysis), question_dynamic_vs_static(results, analysis),
            question_k(results, analysis), *((question_grid(results, analysis),) if results.grid else ()),
            question_error_bars(results, analysis), question_truth(results, analysis),
            per_task_section(results, analysis),
            published_section(results, analysis))


def summary_lines(results: Results, analysis: Analysis) -> tuple[str, str, str]:
    """Three lines: what was read, the dynamic-vs-static answer, the best run by IQM."""
    seeds = sorted({len(r.seeds) for r in results.runs})
    read = (f"{found_text(results)}; {plural(len(results.tasks), 'task')}, ablations {', '.join(results.ablations)}, "
            f"K {seeds_text(run_ks(results.groups)) or '-'}, {'/'.join(map(str, seeds))} "
            f"seed{'' if seeds == [1] else 's'} each")
    static = [(x, kx, i) for (x, kx, y, ky), i in analysis.improvement.items() if base_ablation(y) == STATIC]
    if static:
        x, kx, i = max(static, key=lambda item: item[2].point[0])
        versus = (f"P(dynamic > static-routing) = {fmt_interval(i)} at K={kx}{at_point(x)}: "
                  f"{improvement_verdict('dynamic', 'static-routing', i)}")
    elif any(s.ablation in ("dynamic", STATIC) for s in results.skipped):
        versus = ("dynamic vs static-routing: not compared, a run folder of one of them was skipped as unreadable "
                  "(see the inventory)")
    else:
        versus = "dynamic vs static-routing: not run (see section 4 for the command)"
    if analysis.groups:
        (a, k), g = max(analysis.groups.items(), key=lambda item: item[1].aggregates.point[0])
        best = f"highest IQM: {group_label(a, k)} {fmt_interval(g.aggregates)}"
        label = group_label(a, k)
        below = [task for task, runs in undertrained(results, analysis).items() if any(r == label for r, _ in runs)]
        if below:
            where = "" if len(below) == len(results.tasks) else f" on {', '.join(below)}"
            best += (f" (undertrained, not a finding{where}: below a randomly played supported action's score"
                     f"{' there' if where else ''})")
    else:
        best = "no evaluation scores in these runs"
    return read, versus, best
