"""The report's figures (matplotlib with seaborn's style), drawn from finished numbers.

One colour per ablation across every figure (seaborn's colour-blind palette in the order of
`drol-diag list ablations`), one marker per ablation as well so lines stay distinguishable in
grey print. Bands are 95% bootstrap intervals over seeds; where a line has no interval (one seed)
it is drawn dashed without a band and its legend entry says so.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display: figures are only written to bytes

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from reports.document import Figure  # noqa: E402
from reports.runs import ablation_rank  # noqa: E402

DPI = 150
WIDTH_IN = 8.0  # figure width; on an A4 page (17 cm frame) 10 pt text prints at about 9 pt
PALETTE = sns.color_palette("colorblind", 10)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h")
STYLE = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "legend.fontsize": 9,
         "xtick.labelsize": 9, "ytick.labelsize": 9}


def ablation_colour(ablation: str) -> tuple[float, float, float]:
    """The colour of an ablation in every figure."""
    return PALETTE[ablation_rank(ablation) % len(PALETTE)]


def ablation_marker(ablation: str) -> str:
    return MARKERS[ablation_rank(ablation) % len(MARKERS)]


@dataclass(frozen=True)
class Line:
    """One line of a panel: y (n,) against x (n,), with a band low/high (n,) or NaN for none."""

    label: str
    ablation: str  # picks colour and marker
    x: np.ndarray
    y: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class Panel:
    """One axes: its title, axis labels (with units) and lines; `log2_x` for K axes, `reference` a
    horizontal dotted line (value, label) such as the data's own scale."""

    title: str
    xlabel: str
    ylabel: str
    lines: tuple[Line, ...]
    log2_x: bool = False
    reference: tuple[float, str] | None = None
    ylim: tuple[float, float] | None = None


def line_figure(name: str, caption: str, panels: list[Panel], columns: int = 2) -> Figure:
    """A grid of line panels sharing one legend (one entry per label), rendered to PNG."""
    columns = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    height = 2.9 * rows + 0.7
    with sns.axes_style("whitegrid"), plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, columns, figsize=(WIDTH_IN, height), squeeze=False)
        handles: dict[str, object] = {}
        for ax, panel in zip(axes.flat, panels):
            for line in panel.lines:
                handles.setdefault(*_draw_line(ax, line))
            if panel.reference is not None:
                value, label = panel.reference
                handles.setdefault(label, ax.axhline(value, color="0.3", linestyle=":", linewidth=1.2, label=label))
            ax.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel)
            if panel.ylim is not None:
                ax.set_ylim(*panel.ylim)
            if panel.log2_x:
                ax.set_xscale("log", base=2)
                ticks = sorted({float(v) for line in panel.lines for v in line.x})
                ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
                ax.minorticks_off()
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(len(handles), 4),
                   frameon=False, bbox_to_anchor=(0.5, 0.0))
        legend_rows = -(-len(handles) // 4)
        fig.tight_layout(rect=(0, min(0.35, 0.3 * legend_rows / height + 0.02), 1, 1))
        return _render(fig, name, caption)


def _draw_line(ax, line: Line) -> tuple[str, object]:
    colour, marker = ablation_colour(line.ablation), ablation_marker(line.ablation)
    banded = np.isfinite(line.low).any()
    label = line.label if banded else f"{line.label} (1 seed: no band)"
    markevery = max(1, len(line.x) // 8)
    (handle,) = ax.plot(line.x, line.y, color=colour, marker=marker, markersize=4, markevery=markevery,
                        linewidth=1.6, linestyle="-" if banded else "--", label=label)
    if banded:
        ax.fill_between(line.x, line.low, line.high, color=colour, alpha=0.2, linewidth=0)
    return label, handle


@dataclass(frozen=True)
class IntervalRow:
    """One row of an interval plot: a label, its ablation (colour), and a point with bounds per panel."""

    label: str
    ablation: str
    points: tuple[float, ...]
    lows: tuple[float, ...]
    highs: tuple[float, ...]


def interval_figure(name: str, caption: str, titles: list[str], xlabels: list[str], rows: list[IntervalRow],
                    reference: float | None = None, xlim: tuple[float, float] | None = None) -> Figure:
    """rliable-style interval plot: one panel per statistic, one horizontal bar (the 95% interval)
    with its point estimate per row; rows without an interval show the point only. `reference` draws
    a vertical dotted line in every panel (0.5 for probabilities of improvement)."""
    height = 0.45 * len(rows) + 1.4
    with sns.axes_style("whitegrid"), plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(titles), figsize=(WIDTH_IN, height), squeeze=False, sharey=True)
        positions = np.arange(len(rows))[::-1]
        for p, ax in enumerate(axes.flat):
            for y, row in zip(positions, rows):
                colour = ablation_colour(row.ablation)
                if np.isfinite(row.lows[p]):
                    ax.barh(y, row.highs[p] - row.lows[p], left=row.lows[p], height=0.6, color=colour, alpha=0.75)
                ax.plot([row.points[p]], [y], marker="|", markersize=14, color="k", markeredgewidth=1.8)
            if reference is not None:
                ax.axvline(reference, color="0.3", linestyle=":", linewidth=1.2)
            ax.set(title=titles[p], xlabel=xlabels[p])
            if xlim is not None:
                ax.set_xlim(*xlim)
            ax.set_yticks(positions, [row.label for row in rows])
            ax.grid(axis="y", visible=False)
        fig.tight_layout()
        return _render(fig, name, caption)


def _render(fig, name: str, caption: str) -> Figure:
    buffer = io.BytesIO()
    width, height = fig.get_size_inches()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return Figure(name=name, caption=caption, png=buffer.getvalue(), width_in=float(width), height_in=float(height),
                  dpi=DPI)
