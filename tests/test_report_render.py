"""The HTML and PDF renderers of reports.document.Report, checked the way a reader meets them.

The HTML is opened in headless Chromium (every figure decoded, no console errors, nothing wider than
the window, a non-blank screenshot); the PDF is rasterised and read back with poppler (page count,
a section per new page, real text, nothing outside the margins). A synthetic report exercises the
awkward cases: a 9-column, 30-row table, 300-character commands, text that looks like markup.
"""

from __future__ import annotations

import io
import pathlib
import re
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure as MatplotlibFigure
from PIL import Image, UnidentifiedImageError

import reports.pdf
from reports import build
from reports.document import Command, Figure, Notice, Paragraph, Report, Section, Table
from reports.html import render_html
from reports.pdf import render_pdf
from tests import chromium
from tests.helpers import WAIT_S

POPPLER_HINT = "apt-get install poppler-utils"
MARKUP_LOOKALIKE = "Literal <b>& stays as typed"
SECTION_TITLES = ("Learning curves & final returns", "Routing diagnostics", "Ablations")
WIDE_TABLE_LAST_HEADER = "task 8 IQM"
A4_WIDTH_PT = 595.28
PDF_MARGIN_PT = 1.8 * 72 / 2.54


# ---------------------------------------------------------------------------------------------
# The synthetic report


def _figure_png(seed: int) -> bytes:
    """A real matplotlib line plot with labelled axes, as PNG bytes at 100 dpi."""
    rng = np.random.default_rng(seed)
    figure = MatplotlibFigure(figsize=(6.4, 3.6), layout="constrained")
    axes = figure.add_subplot()
    steps = np.arange(0, 100_000, 1_000)
    for variant in range(3):
        axes.plot(steps, np.cumsum(rng.normal(0.01 * (variant + 1), 0.05, steps.size)), label=f"variant {variant}")
    axes.set_xlabel("environment steps")
    axes.set_ylabel("normalised return")
    axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _long_command(section: int) -> str:
    """A 300-character command: words with spaces and one long token without any."""
    seeds = ",".join(str(seed) for seed in range(40))
    command = (
        f"drol-diag sweep --task antmaze-large-navigate-v0 --variants drol,drol-no-router,iql --seeds {seeds} "
        f"--out runs/referee-{section}/antmaze-large/with/a/rather/deep/folder/structure --executor ray "
        "--steps 1000000 --eval-every 10000"
    )
    return (command + " --force" * 40)[:300]


def _wide_table(section: int) -> Table:
    """9 columns, 30 rows: a text column, then cells like "0.61 [0.55, 0.66]"."""
    columns = ("variant", *(f"task {task} IQM [95% CI]" for task in range(1, 9)))
    rows = tuple(
        (f"variant {section}.{row}", *(f"0.{(row * 7 + task) % 90 + 10:02d} [0.{task + 10}, 0.{task + 80}]" for task in range(8)))
        for row in range(30)
    )
    return Table(
        caption=f"Final normalised return per task, section {section}",
        columns=columns,
        rows=rows,
        note="IQM over seeds with 95% stratified-bootstrap confidence intervals.",
    )


def _section(number: int, anchor: str, title: str) -> Section:
    """A section with every kind of block; in the last one the table follows the figure, so that it
    starts low on a page and has to continue on the next."""
    figure = Figure(
        name=f"curves-{number}",
        caption=f"Learning curves, section {number}",
        png=_figure_png(number),
        width_in=6.4,
        height_in=3.6,
        dpi=100,
    )
    paragraph = Paragraph(f"Section {number} reads the runs of the referee's question {number}. {MARKUP_LOOKALIKE}.")
    if number == len(SECTION_TITLES):
        return Section(anchor=anchor, title=title, blocks=(paragraph, figure, _wide_table(number)))
    blocks = (
        paragraph,
        _wide_table(number),
        Notice(
            kind="missing" if number % 2 else "warning",
            text=f"Section {number} lacks runs for two variants.",
            command=_long_command(number),
        ),
        Command(caption="Regenerate this report:", text=f"drol-diag report --runs runs/referee-{number} --out report"),
        figure,
    )
    return Section(anchor=anchor, title=title, blocks=blocks)


def _report(sections: tuple[Section, ...] | None = None) -> Report:
    """The synthetic report: three full sections unless others are given."""
    if sections is None:
        anchors = ("curves", "routing", "ablations")
        sections = tuple(_section(n, a, t) for n, (a, t) in enumerate(zip(anchors, SECTION_TITLES), start=1))
    return Report(
        title="DROL diagnostics: answers to the referee",
        subtitle="Runs under runs/referee, made 2025-01-01 12:00 UTC",
        summary=(
            "DROL beats IQL on 6 of 8 tasks (IQM 0.61 [0.55, 0.66] vs 0.48 [0.42, 0.53]).",
            "Routing entropy collapses after 200k steps unless the balance loss is on.",
            "Two ablations lack seeds: see the amber boxes.",
        ),
        sections=sections,
    )


@pytest.fixture(scope="module")
def report() -> Report:
    return _report()


@pytest.fixture(scope="module")
def html_text(report: Report) -> str:
    return render_html(report)


@pytest.fixture(scope="module")
def pdf_path(report: Report, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    render_pdf(report, path)
    return path


def _require_chromium() -> None:
    if not chromium.chromium_available():
        pytest.skip(f"Chromium is not installed at {chromium.CHROMIUM} ({chromium.INSTALL_HINT})")


def _require_poppler() -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip(f"pdftoppm is not installed ({POPPLER_HINT})")


def _pixels(png_path: pathlib.Path) -> np.ndarray:
    """An image as an (H, W) array of grey levels 0-255."""
    with Image.open(png_path) as image:
        return np.asarray(image.convert("L"), dtype=np.float64)


def _run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=WAIT_S).stdout


# ---------------------------------------------------------------------------------------------
# HTML


def test_html_renders_in_chromium_with_every_figure_and_no_errors(
    report: Report, html_text: str, tmp_path: pathlib.Path
) -> None:
    _require_chromium()
    html_path = tmp_path / "report.html"
    html_path.write_text(html_text, encoding="utf-8")
    page = chromium.render_page(html_path, tmp_path / "report.png")

    assert len(page.images) == len(report.figures())
    assert page.broken_images == []
    assert page.console_errors == []
    pixels = _pixels(page.screenshot)
    height, width = pixels.shape
    assert width == chromium.WINDOW_WIDTH  # nothing wider than the window: wide tables wrap their cells
    assert height > 2000  # three sections with tables and figures make a long page
    assert pixels.std() > 20 and pixels.min() < 100  # real dark content on the white page


def test_render_page_reports_a_broken_image(tmp_path: pathlib.Path) -> None:
    _require_chromium()
    html_path = tmp_path / "broken.html"
    html_path.write_text(
        '<!DOCTYPE html><meta charset="utf-8"><p>text</p><img src="data:image/png;base64,AAAA" alt="broken">',
        encoding="utf-8",
    )
    page = chromium.render_page(html_path, tmp_path / "broken.png")
    assert page.broken_images == [0]


def test_render_page_reports_a_console_error(tmp_path: pathlib.Path) -> None:
    _require_chromium()
    html_path = tmp_path / "error.html"
    html_path.write_text('<!DOCTYPE html><p>text</p><script>console.error("x")</script>', encoding="utf-8")
    page = chromium.render_page(html_path, tmp_path / "error.png")
    assert page.console_errors == ["console.error: x"]


def test_html_is_self_contained(html_text: str) -> None:
    for outside_reference in ("http://", "https://", 'src="/', "src='/", "url(", "<script", "<link", "@import"):
        assert outside_reference not in html_text
    assert html_text.count('src="data:image/png;base64,') == 3


class _Anchors(HTMLParser):
    """Collects element ids, in-page links and the text of <h2> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.links: list[str] = []
        self.numeric_cells: list[str] = []
        self._in_numeric_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.append(attributes["id"] or "")
        if tag == "a" and (attributes.get("href") or "").startswith("#"):
            self.links.append((attributes["href"] or "")[1:])
        self._in_numeric_cell = tag == "td" and attributes.get("class") == "num"

    def handle_data(self, data: str) -> None:
        if self._in_numeric_cell:
            self.numeric_cells.append(data)
            self._in_numeric_cell = False


def test_html_contents_link_to_every_section_and_numbers_align_right(report: Report, html_text: str) -> None:
    parsed = _Anchors()
    parsed.feed(html_text)
    anchors = [section.anchor for section in report.sections]
    assert parsed.links == anchors
    assert all(anchor in parsed.ids for anchor in anchors)
    assert '<meta charset="utf-8">' in html_text and 'name="viewport"' in html_text
    assert "0.10 [0.10, 0.80]" in parsed.numeric_cells  # interval cells are right-aligned
    assert "variant 1.0" not in parsed.numeric_cells  # labels are not


def test_html_escapes_text(html_text: str) -> None:
    assert "Literal &lt;b&gt;&amp; stays as typed" in html_text
    assert "<b>&" not in html_text
    assert "Learning curves &amp; final returns" in html_text


# ---------------------------------------------------------------------------------------------
# PDF


def test_pdf_pages_follow_the_structure_and_none_is_blank(
    report: Report, pdf_path: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    _require_poppler()
    _run("pdftoppm", "-r", "50", "-png", str(pdf_path), str(tmp_path / "page"))
    page_images = sorted(tmp_path.glob("page-*.png"))
    pages_by_pdfinfo = int(re.search(r"^Pages:\s+(\d+)", _run("pdfinfo", str(pdf_path)), re.MULTILINE).group(1))
    assert len(page_images) == pages_by_pdfinfo >= 1 + len(report.sections)
    for page_image in page_images:
        pixels = _pixels(page_image)
        assert pixels.std() > 3 and pixels.min() < 128, f"{page_image.name} looks blank"


def test_pdf_leads_with_the_first_section_and_lists_every_section_in_the_contents(report: Report,
                                                                                 pdf_path: pathlib.Path) -> None:
    _require_poppler()
    pages = _run("pdftotext", "-layout", str(pdf_path), "-").split("\f")
    section_pages = [next(i + 1 for i, page in enumerate(pages) if section.title in map(str.strip, page.splitlines()))
                     for section in report.sections]  # 1-based; sections flow, each where the last one ends
    assert section_pages == sorted(section_pages) and section_pages[0] == 1  # the first (the verdicts) on page 1
    contents = "\n".join(pages)  # (the contents may continue on the next page)
    for section, page_number in zip(report.sections, section_pages):
        assert re.search(re.escape(section.title) + r"[ .]*" + str(page_number) + r"\s*$", contents, re.MULTILINE)


def test_pdf_text_is_real_text_with_tables_repeating_their_header(pdf_path: pathlib.Path) -> None:
    _require_poppler()
    pages = _run("pdftotext", str(pdf_path), "-").split("\f")
    text = "\f".join(pages)
    assert "0.61 [0.55, 0.66]" in text  # from the summary
    assert "0.10 [0.10, 0.80]" in text  # a table cell
    assert "Missing runs:" in text and "Caution:" in text
    pages_with_table_rows = [page for page in pages if re.search(r"variant\s+\d\.\d+", page)]
    assert len(pages_with_table_rows) > len(SECTION_TITLES)  # the last table continues on a new page
    assert all(WIDE_TABLE_LAST_HEADER in page for page in pages_with_table_rows)  # with its header row again


def test_pdf_shows_long_commands_whole(report: Report, pdf_path: pathlib.Path) -> None:
    _require_poppler()
    text_without_spaces = re.sub(r"\s+", "", _run("pdftotext", str(pdf_path), "-"))
    commands = [block.command for section in report.sections for block in section.blocks if isinstance(block, Notice)]
    assert commands and all(len(command) == 300 for command in commands)
    for command in commands:  # wrapped over several lines, but not a character lost
        assert re.sub(r"\s+", "", command) in text_without_spaces


def test_pdf_escapes_text(pdf_path: pathlib.Path) -> None:
    _require_poppler()
    text = _run("pdftotext", str(pdf_path), "-")
    assert MARKUP_LOOKALIKE in text
    assert SECTION_TITLES[0] in text


def test_pdf_keeps_every_word_inside_the_margins(pdf_path: pathlib.Path) -> None:
    _require_poppler()
    boxes = _run("pdftotext", "-bbox", str(pdf_path), "-")
    right_edges = [float(value) for value in re.findall(r'<word xMin="[\d.]+" yMin="[\d.]+" xMax="([\d.]+)"', boxes)]
    assert len(right_edges) > 500
    assert max(right_edges) <= A4_WIDTH_PT - PDF_MARGIN_PT + 1.0  # long commands and wide tables wrap


def test_pdf_write_leaves_no_temporary_file(report: Report, tmp_path: pathlib.Path) -> None:
    target = tmp_path / "report.pdf"
    render_pdf(report, target)
    assert target.read_bytes().startswith(b"%PDF-")
    assert list(tmp_path.glob("*.tmp-*")) == []


def test_pdf_failure_leaves_neither_target_nor_temporary_file(tmp_path: pathlib.Path) -> None:
    bad_figure = Figure(name="bad", caption="not a png", png=b"not a png", width_in=4, height_in=3, dpi=100)
    target = tmp_path / "report.pdf"
    with pytest.raises(UnidentifiedImageError, match="cannot identify image file"):  # (PIL's, through reportlab)
        render_pdf(_report((Section(anchor="bad", title="Bad", blocks=(bad_figure,)),)), target)
    assert list(tmp_path.iterdir()) == []


def test_a_report_whose_pdf_fails_writes_none_of_its_outputs(tmp_path: pathlib.Path) -> None:
    outputs = build.default_outputs(tmp_path, figures=tmp_path / "figures")
    previous = {path.name: f"previous {path.name}".encode() for path in
                (outputs.html, outputs.pdf, outputs.scores_csv, outputs.report_json)}
    for name, data in previous.items():
        (tmp_path / name).write_bytes(data)
    results = SimpleNamespace(scores=pd.DataFrame({"task": ["modes-2d"], "score": [0.5]}))  # (all write reads)
    bad_figure = Figure(name="bad", caption="not a png", png=b"not a png", width_in=4, height_in=3, dpi=100)
    # A PDF nowhere writable is the system's error, one line; a figure it cannot draw is raised as it is.
    with pytest.raises(build.ReportError, match=r"^cannot write /proc/r.pdf: No such file or directory; nothing was "
                       r"written \(earlier outputs are kept\)$"):
        build.write(_report((Section(anchor="only", title="Only", blocks=(Paragraph("text"),)),)), {}, results,
                    replace(outputs, pdf=pathlib.Path("/proc/r.pdf")))
    with pytest.raises(UnidentifiedImageError):
        build.write(_report((Section(anchor="bad", title="Bad", blocks=(bad_figure,)),)), {}, results, outputs)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == previous  # (no figures folder either)


def test_pdf_failure_while_writing_keeps_the_previous_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.pdf"
    target.write_bytes(b"previous report")

    def failing_replace(source: object, destination: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(reports.pdf.os, "replace", failing_replace)
    small_report = _report((Section(anchor="only", title="Only", blocks=(Paragraph("text"),)),))
    with pytest.raises(OSError, match="disk full"):
        render_pdf(small_report, target)
    assert target.read_bytes() == b"previous report"
    assert [path.name for path in tmp_path.iterdir()] == ["report.pdf"]
