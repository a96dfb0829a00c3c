"""Text the sweep command prints: the plan, the time estimates and the final summary (strings only)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ablations.estimate import Estimate, wall_time
from ablations.executors import ELSEWHERE, FAILED
from ablations.grid import SweepSpec
from ablations.sweep import GroupResult, PlannedGroup, SweepPlan, action
from drol_diag.runfolder import folders


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, a header line first."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in (headers, *rows))


def seeds_text(seeds: Sequence[int]) -> str:
    """(0, 1, 2, 3, 7) -> '0-3,7'."""
    parts: list[list[int]] = []
    for seed in seeds:
        if parts and seed == parts[-1][-1] + 1:
            parts[-1].append(seed)
        else:
            parts.append([seed])
    return ",".join(f"{p[0]}-{p[-1]}" if len(p) > 2 else ",".join(map(str, p)) for p in parts)


def duration_text(seconds: float | None) -> str:
    """Seconds as '42 s', '12.5 min' or '3.2 h' ('-' for None)."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def plan_text(plan: SweepPlan, layout: str) -> str:
    """The groups, what will be done with each, the notes and how the groups run."""
    seeds = len(plan.spec.seeds)
    rows = []
    for p in plan.groups:
        holder = folders.lock_holder(p.run_dir) if p.state.kind != folders.FINISHED else None
        doing = f"running elsewhere ({holder})" if holder else action(p.state)
        rows.append((p.run.task, p.run.ablation, p.learner.num_candidates, *grid_cells(plan.spec, p),
                     seeds_text(p.run.seeds), p.run.steps, doing))
    lines = [f"sweep into {plan.out}: {len(plan.groups)} groups x {seeds} seeds = {len(plan.groups) * seeds} runs, "
             f"{len(plan.to_run)} to run",
             table(("task", "ablation", "K", *(name for name, _ in plan.spec.grid), "seeds", "steps", "action"), rows)]
    lines += [f"note: {note}" for note in plan.notes]
    lines.append(layout)
    return "\n".join(lines)


def grid_cells(spec: SweepSpec, planned: PlannedGroup) -> tuple[str, ...]:
    """A group's value of each grid axis of the sweep ('-': its ablation does not take that setting)."""
    point = dict(planned.group.settings)
    return tuple(str(point[name]) if name in point else "-" for name, _ in spec.grid)


def estimate_text(plan: SweepPlan, estimates: dict[str, Estimate], jobs: int) -> str:
    """Per group: start-up and compilation time, speed and estimated time; then the total and the wall time."""
    rows = [(p.run.task, p.run.ablation, p.learner.num_candidates, *grid_cells(plan.spec, p), p.run.steps,
             f"{e.compile_s:.1f} s", f"{e.seed_updates_per_s:.0f}", duration_text(e.total_s))
            for p in plan.to_run for e in [estimates[str(p.run_dir)]]]
    durations = [estimates[str(p.run_dir)].total_s for p in plan.to_run]
    return "\n".join([
        "estimated time (a short warm-up measured here: start-up and compilation, updates, diagnostics rows, "
        "evaluations, log writes and checkpoints):",
        table(("task", "ablation", "K", *(name for name, _ in plan.spec.grid), "steps", "start+compile",
               "seed-updates/s", "estimate"), rows),
        f"total {duration_text(sum(durations))} of group time; about {duration_text(wall_time(durations, jobs))} "
        f"wall with {jobs} at a time"])


def results_text(results: list[GroupResult]) -> str:
    """The final table (status, wall time, mean score per group), then each failure with its log."""
    rows = []
    axes = list(dict.fromkeys(name for r in results for name, _ in r.planned.group.settings))
    for r in results:
        p, outcome = r.planned, r.outcome
        score = r.summary.get("mean_score") if r.summary else None
        point = dict(p.group.settings)
        rows.append((p.run.task, p.run.ablation, p.learner.num_candidates, *(str(point.get(a, "-")) for a in axes),
                     seeds_text(p.run.seeds), outcome.status, duration_text(outcome.wall_s),
                     "-" if score is None else f"{score:.3f}" if math.isfinite(score) else "none: no seed scored"))
    lines = [table(("task", "ablation", "K", *axes, "seeds", "status", "wall", "mean score"), rows)]
    for r in results:
        if r.outcome.status == FAILED:
            lines.append(f"failed: {r.planned.name}: {r.outcome.error} (log: {r.planned.log_path})")
        elif r.outcome.status == ELSEWHERE:
            lines.append(f"running elsewhere: {r.planned.name} is being trained by {r.outcome.error}; "
                         "run this sweep again when it has finished")
    return "\n".join(lines)
