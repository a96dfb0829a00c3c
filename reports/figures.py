"""The report's figures (matplotlib with seaborn's style), drawn from finished numbers.

One colour and marker per ablation in every figure (colour-blind palette, readable in grey print); bands are 95%
intervals. An axis stays within the values a quantity can take and spans at least twice its materiality threshold.
"""

from __future__ import annotations

import io
import itertools
import textwrap
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display: figures are only written to bytes

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from reports import stats  # noqa: E402
from reports.document import Figure  # noqa: E402
from reports.runs import ablation_rank  # noqa: E402

DPI = 150
WIDTH_IN = 8.0  # figure width; on an A4 page (17 cm frame) 10 pt text prints at about 9 pt
PALETTE = sns.color_palette("colorblind", 10)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h")
STYLE = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "legend.fontsize": 9,
         "xtick.labelsize": 9, "ytick.labelsize": 9}
CHARACTER_WIDTH_IN = 0.075  # a 10 pt DejaVu Sans character, on average: labels wrap at panel width / this
NARROW_AXIS = 0.02  # an axis spanning less than this fraction of its largest absolute value gets a note
LEVEL_STYLES = ("--", "-.", (0, (1, 1)), (0, (5, 2, 1, 2)))  # line styles of reference levels, in order


def ablation_colour(ablation: str) -> tuple[float, float, float]:
    """The colour of an ablation in every figure."""
    return PALETTE[ablation_rank(ablation) % len(PALETTE)]


@dataclass(frozen=True)
class Line:
    """One line of a panel: y (n,) against x (n,), with a band low/high (n,) or NaN for none."""

    label: str
    ablation: str  # picks colour and marker
    x: np.ndarray
    y: np.ndarray
    low: np.ndarray
    high: np.ndarray
    secondary: bool = False  # the second line of a pair in one colour (a truth beside its estimate): dotted,
    # hollow markers
    key: str = ""  # shades apart the lines of one ablation (its grid points: their labels)


def interval_line(label: str, ablation: str, x: np.ndarray, estimate: stats.Interval | list[stats.Interval],
                  secondary: bool = False, key: str = "") -> Line:
    """`estimate`'s points with their band against x (n,): one (n,) Interval, or n (1,) Intervals (one per x)."""
    if isinstance(estimate, stats.Interval):
        return Line(label, ablation, x, estimate.point, estimate.low, estimate.high, secondary, key)
    return Line(label, ablation, np.array(x, float), *(np.array([getattr(i, end)[0] for i in estimate])
                                                       for end in ("point", "low", "high")), secondary, key)


@dataclass(frozen=True)
class Panel:
    """One axes: its title, axis labels (with units) and lines."""

    title: str
    xlabel: str
    ylabel: str
    lines: tuple[Line, ...]
    log2_x: bool = False  # for K axes
    reference: tuple[float, str] | None = None  # a dotted horizontal line (value, label), e.g. the data's own scale
    ylim: tuple[float, float] | None = None  # fixes the axis (else bounds and min_span fit it)
    levels: tuple[tuple[float, str], ...] = ()  # grey horizontal lines (value, label): the reference policies
    bounds: tuple[float | None, float | None] = (None, None)  # the values the quantity can take (None: open)
    min_span: float = 0.0  # the least height of the y axis (twice the quantity's materiality threshold)


PANEL_HEIGHT_IN = 2.4  # one row of line panels (the demo's report fits 10 PDF pages)


def line_figure(name: str, caption: str, panels: list[Panel], columns: int = 2) -> Figure:
    """A grid of line panels sharing one legend (one entry per label), rendered to PNG."""
    return _render(draw_line_figure(panels, columns), name, caption)


def draw_line_figure(panels: list[Panel], columns: int = 2):
    """line_figure's matplotlib figure, drawn but not rendered (for checks of its axes)."""
    columns = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    height = PANEL_HEIGHT_IN * rows + 0.7
    with sns.axes_style("whitegrid"), plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, columns, figsize=(WIDTH_IN, height), squeeze=False)
        handles: dict[str, object] = {}
        shades = line_shades(panels)
        for ax, panel in zip(axes.flat, panels):
            for line in panel.lines:
                handles.setdefault(*_draw_line(ax, line, shades[(line.ablation, line.key)]))
            if panel.reference is not None:
                value, label = panel.reference
                handles.setdefault(label, ax.axhline(value, color="0.3", linestyle=":", linewidth=1.2, label=label))
            for (value, label), style in zip(panel.levels, itertools.cycle(LEVEL_STYLES)):
                handles.setdefault(label, ax.axhline(value, color="0.45", linestyle=style, linewidth=1.1,
                                                     label=label))
            characters = _characters(WIDTH_IN / columns)
            ax.set(title=_wrap(panel.title, characters), xlabel=_wrap(panel.xlabel, characters),
                   ylabel=_wrap(panel.ylabel, int(PANEL_HEIGHT_IN / CHARACTER_WIDTH_IN)))
            if panel.ylim is not None:
                ax.set_ylim(*panel.ylim)
            else:
                _fit_y_axis(ax, panel)
            if panel.log2_x:
                ax.set_xscale("log", base=2)
                ticks = sorted({float(v) for line in panel.lines for v in line.x})
                ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
                ax.minorticks_off()
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        entry_in = max((len(label) for label in handles), default=1) * CHARACTER_WIDTH_IN * 0.9 + 0.6  # (9 pt, key)
        legend_columns = max(1, min(len(handles), 4, int(WIDTH_IN / entry_in)))  # as many as fit the width
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=legend_columns,
                   frameon=False, bbox_to_anchor=(0.5, 0.0))
        legend_rows = -(-len(handles) // legend_columns)
        fig.tight_layout(rect=(0, min(0.35, 0.3 * legend_rows / height + 0.02), 1, 1))
        return fig


def _characters(width_in: float) -> int:
    """About how many characters of a 10 pt label fit in `width_in` inches."""
    return max(8, int(width_in / CHARACTER_WIDTH_IN))


def _wrap(text: str, characters: int) -> str:
    """`text` broken between words into lines of at most `characters` (a longer word keeps its line)."""
    return "\n".join(textwrap.wrap(text, characters, break_long_words=False)) if text else text


def _fit_y_axis(ax, panel: Panel) -> None:
    """Keep the y axis inside the quantity's bounds and at least `min_span` high; note a narrow one."""
    low, high = ax.get_ylim()
    bound_low, bound_high = panel.bounds
    if high - low < panel.min_span:
        middle = (low + high) / 2
        low, high = middle - panel.min_span / 2, middle + panel.min_span / 2
    if bound_low is not None and low < bound_low:
        low, high = bound_low, max(high, bound_low + panel.min_span)
    if bound_high is not None and high > bound_high:
        low, high = min(low, bound_high - panel.min_span), bound_high
        if bound_low is not None:
            low = max(low, bound_low)
    ax.set_ylim(low, high)
    ax.ticklabel_format(axis="y", useOffset=False)  # (an offset such as "+0.998" reads as the values)
    largest = max(abs(low), abs(high))
    if largest > 0 and high - low < NARROW_AXIS * largest:
        ax.text(0.02, 0.97, f"note: narrow axis, {low:.4g} to {high:.4g}", transform=ax.transAxes, ha="left",
                va="top", fontsize=8, color="0.25", bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0})


def line_shades(panels: list[Panel]) -> dict[tuple[str, str], int]:
    """{(Line.ablation, Line.key): its shade}: 0 for an ablation's first key in the figure, 1, 2, ... for its next
    ones (grid points), drawn darker and with another marker, the same in every panel."""
    keys = list(dict.fromkeys((line.ablation, line.key) for panel in panels for line in panel.lines))
    return {key: [ablation_rank(other) for other, _ in keys[:i]].count(ablation_rank(key[0]))
            for i, key in enumerate(keys)}


def _draw_line(ax, line: Line, shade: int = 0) -> tuple[str, object]:
    colour, marker = ablation_colour(line.ablation), MARKERS[ablation_rank(line.ablation) % len(MARKERS)]
    if shade:  # another line of the same ablation's colour: darker, and the marker after its own
        colour = tuple(c * (1.0 - 0.3 * ((shade - 1) % 3 + 1) / 1.5) for c in colour)
        marker = MARKERS[(MARKERS.index(marker) + 3 * shade) % len(MARKERS)]
    banded = np.isfinite(line.low).any()
    label = line.label if banded else f"{line.label} (1 seed: no band)"
    markevery = max(1, len(line.x) // 8)
    style = ":" if line.secondary else "-" if banded else "--"
    (handle,) = ax.plot(line.x, line.y, color=colour, marker=marker, markersize=4, markevery=markevery,
                        linewidth=1.6, linestyle=style, label=label,
                        markerfacecolor="white" if line.secondary else colour)
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
    """rliable-style interval plot: one panel per statistic, per row a bar (the 95% interval, if any) and the point;
    `reference` a vertical dotted line in every panel (0.5 for probabilities of improvement)."""
    return _render(draw_interval_figure(titles, xlabels, rows, reference, xlim), name, caption)


def draw_interval_figure(titles: list[str], xlabels: list[str], rows: list[IntervalRow],
                         reference: float | None = None, xlim: tuple[float, float] | None = None):
    """interval_figure's matplotlib figure, drawn but not rendered (for checks of its layout)."""
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
            characters = _characters(WIDTH_IN * 0.8 / len(titles))  # (the row labels take a fifth)
            ax.set(title=_wrap(titles[p], characters), xlabel=_wrap(xlabels[p], characters))
            if xlim is not None:
                ax.set_xlim(*xlim)
            ax.set_yticks(positions, [_wrap(row.label, 28) for row in rows])
            ax.grid(axis="y", visible=False)
        fig.tight_layout()
        return fig


def _render(fig, name: str, caption: str) -> Figure:
    buffer = io.BytesIO()
    width, height = fig.get_size_inches()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return Figure(name=name, caption=caption, png=buffer.getvalue(), width_in=float(width), height_in=float(height),
                  dpi=DPI)
