"""The paper's published OGBench success rates (docs/drol-spec.md section 1), to set beside a sweep's: per family,
mean +- standard deviation in percent over its 5 tasks and 8 seeds, scored as docs/drol-spec.md section 3 says."""

from __future__ import annotations

from drol_diag.settings.presets import OGBENCH_PRESETS

PAPER_UPDATES = 1_000_000  # OGBench training budget of the published numbers
PAPER_SEEDS = 8
PAPER_HIDDEN = "512,512,512,512"  # the paper's actor and critic widths
PAPER_TRANSITIONS = 1_000_000  # OGBench's training datasets (docs/drol-spec.md section 4)

# family (dataset prefix) -> column -> (mean %, std %)
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "antmaze-large-navigate": {"FQL": (79, 3), "DROL(16)": (90, 2), "DROL*": (89, 6)},
    "antmaze-giant-navigate": {"FQL": (9, 6), "DROL(16)": (3, 3), "DROL*": (45, 24)},
    "humanoidmaze-medium-navigate": {"FQL": (58, 5), "DROL(16)": (65, 9), "DROL*": (68, 7)},
    "humanoidmaze-large-navigate": {"FQL": (4, 2), "DROL(16)": (7, 4), "DROL*": (11, 6)},
    "antsoccer-arena-navigate": {"FQL": (60, 2), "DROL(16)": (62, 2), "DROL*": (65, 7)},
    "cube-single-play": {"FQL": (96, 1), "DROL(16)": (97, 2), "DROL*": (98, 2)},
    "cube-double-play": {"FQL": (29, 2), "DROL(16)": (20, 3), "DROL*": (26, 7)},
    "scene-play": {"FQL": (56, 2), "DROL(16)": (54, 3), "DROL*": (58, 3)},
    "puzzle-3x3-play": {"FQL": (30, 1), "DROL(16)": (41, 9), "DROL*": (41, 9)},
    "puzzle-4x4-play": {"FQL": (17, 2), "DROL(16)": (16, 2), "DROL*": (25, 6)},
}


def published_family(task: str) -> str | None:
    """The published family a task belongs to (e.g. cube-double-play-singletask-task2-v0 ->
    cube-double-play), or None for tasks the paper did not publish."""
    return next((family for family in PUBLISHED if task.startswith(family + "-")), None)


def published_column(family: str, ablation: str, k: int) -> str | None:
    """Which published column a run corresponds to: fql -> FQL, dynamic at K=16 -> DROL(16),
    dynamic at the family's tuned K -> DROL* (both when the tuned K is 16); None otherwise."""
    if ablation == "fql":
        return "FQL"
    if ablation != "dynamic":
        return None
    tuned = OGBENCH_PRESETS[family]["num_candidates"]
    if k == 16:
        return "DROL(16)" if tuned != 16 else "DROL(16) and DROL*"
    return "DROL*" if k == tuned else None


def nearest_column(family: str, ablation: str, k: int) -> tuple[str, int | None] | None:
    """The published column to set a run beside and that column's K: its own (published_column), else for dynamic
    at another K the tuned DROL* (the run differs in K); None for a variant the paper did not publish."""
    tuned = OGBENCH_PRESETS[family]["num_candidates"]
    column = published_column(family, ablation, k)
    if column is not None:
        return column, None if ablation == "fql" else k
    return ("DROL*", tuned) if ablation == "dynamic" else None
