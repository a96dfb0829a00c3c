"""Not a question of its own: what several questions share. The static-routing control's name, diagnostic
look-ups and the dynamic-vs-static comparison of their late values (questions 1-3), and the diagnostic figure,
table and per-task blocks those questions show (mean over seeds with 95% bootstrap intervals).
"""

from __future__ import annotations

from reports.analysis import BASELINE_WITHOUT_K, DIAGNOSTICS, PER_PROBE, REFERENCE_ABLATION, Analysis, DiagnosticSummary
from reports.document import Block, Figure, Paragraph, Table
from reports.figures import Line, Panel, line_figure
from reports.runs import Results
from reports.text import fill_command, fmt_interval, group_label, overlaps, run_ks

STATIC = "static-routing"
STEP_AXIS = "training step (gradient updates)"


def get(analysis: Analysis, variable: str, task: str, ablation: str, k: int) -> DiagnosticSummary | None:
    return analysis.diagnostics.get((variable, task, ablation, k))


def dynamic_ks(results: Results) -> list[int]:
    return results.ks(REFERENCE_ABLATION)


def late_comparison(analysis: Analysis, variable: str, task: str, k: int) -> str | None:
    """How the late values of dynamic and static-routing at K compare: None (one is missing),
    "overlap", "dynamic higher" or "dynamic lower" (intervals apart)."""
    dyn, sta = get(analysis, variable, task, REFERENCE_ABLATION, k), get(analysis, variable, task, STATIC, k)
    if dyn is None or sta is None:
        return None
    if overlaps(dyn.late, sta.late):
        return "overlap"
    return "dynamic higher" if dyn.late.point[0] > sta.late.point[0] else "dynamic lower"


def fill_static_command(results: Results) -> str:
    """The sweep command that adds static-routing runs beside this folder's ablations."""
    return fill_command(results, ablations=results.ablations + [STATIC])


def diagnostic_label(variable: str) -> str:
    return DIAGNOSTICS[variable].label if variable in DIAGNOSTICS else PER_PROBE[variable]


def diagnostic_figure(results: Results, analysis: Analysis, task: str, names: list[str], name: str,
                      caption: str, references: dict[str, tuple[float, str]] | None = None,
                      routing_only: bool = False) -> Figure | None:
    """Panels (quantity x K), each with one line per ablation: mean over seeds with its band.
    `routing_only` leaves out K=1 (one candidate: nothing to route) when other K were run."""
    references = references or {}
    ks = run_ks(results.groups) or [1]
    if routing_only and len(ks) > 1:
        ks = [k for k in ks if k > 1]
    panels = []
    for variable in names:
        for k in ks:
            lines = []
            for ablation in results.ablations:
                run_k = 1 if ablation == BASELINE_WITHOUT_K else k
                summary = get(analysis, variable, task, ablation, run_k)
                if summary is None or (ablation == BASELINE_WITHOUT_K and k != ks[0] and len(ks) > 1):
                    continue
                e = summary.curve.estimate
                lines.append(Line(ablation, ablation, summary.curve.steps, e.point, e.low, e.high))
            if lines:
                unit = DIAGNOSTICS[variable].unit if variable in DIAGNOSTICS else "count"
                panels.append(Panel(f"{diagnostic_label(variable)}, K={k}", STEP_AXIS, unit, tuple(lines),
                                    reference=references.get(variable)))
    if not panels:
        return None
    return line_figure(name, caption, panels, columns=min(len(ks), 3))


def diagnostic_table(results: Results, analysis: Analysis, task: str, names: list[str], caption: str) -> Table | None:
    """Per (ablation, K): each quantity early -> late, with intervals over seeds."""
    rows = []
    for ablation, k in results.groups:
        summaries = [get(analysis, variable, task, ablation, k) for variable in names]
        present = [s for s in summaries if s is not None]
        if present:
            cells = [f"{fmt_interval(s.early)} -> {fmt_interval(s.late)}" if s else "-" for s in summaries]
            rows.append((group_label(ablation, k), *cells, str(len(present[0].seeds))))
    if not rows:
        return None
    columns = ("run", *[diagnostic_label(n) for n in names], "seeds")
    return Table(caption, columns, tuple(rows), note="first logged value -> mean over the last third of training; "
                 "mean over seeds [95% bootstrap interval over seeds]")


def task_blocks(task: str, sentences: list[str], figure: Figure | None, table: Table | None) -> list[Block]:
    """A diagnostic question's blocks for one task: its answer paragraphs, then its figure and its table
    where the data give them."""
    return [Paragraph(f"{task}: {sentence}") for sentence in sentences] + [b for b in (figure, table) if b]
