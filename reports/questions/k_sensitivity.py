"""Question 5: how sensitive is it to K?

Shows, per ablation, the IQM of the score at each K run and whether the best K is above the others (intervals apart),
how many candidates own no probe at the largest K, and figures of the IQM and the late candidate-usage quantities
(load entropy, dead candidates) against K. With one K only, it gives the sweep command that adds more.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reports import stats
from reports.analysis import BASELINE_WITHOUT_K, DIAGNOSTICS, Analysis
from reports.document import Block, Paragraph, Section
from reports.figures import Line, Panel, line_figure
from reports.questions.common import get
from reports.runs import Results
from reports.text import fill_command, fmt_interval, missing, run_ks, seeds_text

ANCHOR, TITLE = "q5-k", "5. How sensitive is it to K?"


def scored_ks(results: Results, analysis: Analysis, ablation: str) -> list[int]:
    """The K values an ablation was run at that have evaluation scores."""
    return [k for k in results.ks(ablation) if (ablation, k) in analysis.groups]


def k_line(ablation: str, ks: Sequence[int], intervals: Sequence[stats.Interval]) -> Line:
    """One ablation's line against K: the (1,) intervals' points with their bands."""
    return Line(ablation, ablation, np.array(ks, float), np.array([i.point[0] for i in intervals]),
                np.array([i.low[0] for i in intervals]), np.array([i.high[0] for i in intervals]))


def k_answer(results: Results, analysis: Analysis) -> list[str]:
    sentences = []
    for ablation in results.ablations:
        ks = scored_ks(results, analysis, ablation)
        if len(ks) < 2:
            continue
        iqm = {k: analysis.groups[(ablation, k)].aggregates for k in ks}
        best = max(ks, key=lambda k: iqm[k].point[0])
        worse = [k for k in ks if k != best and iqm[k].has_interval and iqm[best].has_interval
                 and iqm[k].high[0] < iqm[best].low[0]]
        text = f"{ablation}: IQM " + ", ".join(f"K={k} {fmt_interval(iqm[k])}" for k in ks) + f". The best is K={best}"
        text += (f"; it is above K={', '.join(map(str, worse))} (intervals do not overlap)." if worse else
                 "; every other K's interval overlaps it, so these runs do not show a sensitivity to K.")
        dead = [get(analysis, "dead_candidates", t, ablation, max(ks)) for t in results.tasks]
        dead = [d for d in dead if d is not None]
        if dead:
            text += (f" At K={max(ks)}, {fmt_interval(dead[0].late)} candidates own no probe late in training"
                     f" ({results.tasks[0]}).")
        sentences.append(text)
    return sentences


def question_k(results: Results, analysis: Analysis) -> Section:
    blocks: list[Block] = []
    blocks += [Paragraph(sentence) for sentence in k_answer(results, analysis)]
    ks_run = run_ks(results.groups)
    if len(ks_run) < 2:
        wanted = sorted(set(ks_run) | {1, 4, 16})
        blocks.append(missing(f"Only K={seeds_text(ks_run)} was run: a K curve needs at least two values.",
                              fill_command(results, ks=wanted)))
        return Section(ANCHOR, TITLE, tuple(blocks))
    panels = []
    lines = []
    for ablation in results.ablations:
        ks = scored_ks(results, analysis, ablation)
        if ablation == BASELINE_WITHOUT_K or len(ks) < 1:
            continue
        lines.append(k_line(ablation, ks, [analysis.groups[(ablation, k)].aggregates for k in ks]))
    if lines:
        panels.append(Panel("IQM against K", "K (candidates per state)", "IQM of score", tuple(lines), log2_x=True))
    for task in results.tasks:
        for variable in ("load_entropy", "dead_candidates"):
            lines = []
            for ablation in results.ablations:
                pts = [(k, get(analysis, variable, task, ablation, k)) for k in results.ks(ablation)]
                pts = [(k, s) for k, s in pts if s is not None]
                if ablation == BASELINE_WITHOUT_K or not pts:
                    continue
                lines.append(k_line(ablation, [k for k, _ in pts], [s.late for _, s in pts]))
            if lines:
                panels.append(Panel(f"{task}: {DIAGNOSTICS[variable].label} (late)", "K (candidates per state)",
                                    DIAGNOSTICS[variable].unit, tuple(lines), log2_x=True))
    if panels:
        blocks.append(line_figure("k-sensitivity", "Sensitivity to K: IQM of the score over runs and tasks, and the "
                                  "late candidate-usage quantities per task; bands 95% bootstrap intervals.", panels,
                                  columns=3 if len(panels) > 4 else 2))
    return Section(ANCHOR, TITLE, tuple(blocks))
