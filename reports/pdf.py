"""Render a reports.document.Report as an A4 PDF with reportlab's platypus layout engine.

Text is real PDF text in Helvetica and Courier, with DejaVu (matplotlib's copy) for characters beyond Windows-1252.
"""

from __future__ import annotations

import functools
import io
import os
import pathlib
import re
from collections.abc import Callable
from xml.sax.saxutils import escape

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm, inch
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    Image,
    KeepTogether,
    LongTable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
    XPreformatted,
)
from reportlab.platypus import Table as LayoutTable
from reportlab.platypus.tableofcontents import TableOfContents

from reports import document
from reports.html import NOTICE_LABELS, looks_numeric, numeric_columns

PAGE_SIZE = A4
MARGIN = 1.8 * cm
FOOTER_GAP = 0.9 * cm  # from the bottom edge of the page to the footer's baseline
FRAME_PADDING = 6  # points: platypus frames pad their content on every side by default
FRAME_WIDTH = PAGE_SIZE[0] - 2 * MARGIN - 2 * FRAME_PADDING
FRAME_HEIGHT = PAGE_SIZE[1] - 2 * MARGIN - 2 * FRAME_PADDING
FIGURE_MAX_HEIGHT = 0.36 * FRAME_HEIGHT
BOX_PADDING = (9, 8, 6, 7)  # points: left, right, top, bottom padding of notice and command boxes
BOX_CONTENT_WIDTH = FRAME_WIDTH - BOX_PADDING[0] - BOX_PADDING[1] - 1  # 1 pt to spare
COURIER_ADVANCE = 0.6  # every Courier glyph is 0.6 em wide (DejaVu Sans Mono's, for what Courier lacks, 0.602)
FONT, FONT_BOLD, FONT_OBLIQUE, FONT_MONO = "Helvetica", "Helvetica-Bold", "Helvetica-Oblique", "Courier"
FALLBACK_FONTS = {FONT: "DejaVuSans", FONT_BOLD: "DejaVuSans-Bold", FONT_OBLIQUE: "DejaVuSans-Oblique",
                  FONT_MONO: "DejaVuSansMono"}  # for the characters the built-in fonts cannot encode
FONT_FOLDER = pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu, part of every matplotlib
TABLE_START_HEIGHT = 90  # points: room a table needs to start on a page (caption, header, a few rows)
WIDE_TABLE_COLUMNS = 7  # tables with more columns use the smaller font

TEXT_COLOR = colors.HexColor("#1f2328")
MUTED_COLOR = colors.HexColor("#59636e")
RULE_COLOR = colors.HexColor("#b8c0c8")
HEADER_BACKGROUND = colors.HexColor("#e3e9ef")
ZEBRA_BACKGROUND = colors.HexColor("#f4f6f8")
CODE_BACKGROUND = colors.HexColor("#f1f2f4")
NOTICE_COLORS = {  # kind: (background, left rule)
    "missing": (colors.HexColor("#fff3d6"), colors.HexColor("#b7791f")),
    "warning": (colors.HexColor("#fde8e8"), colors.HexColor("#c0392b")),
}


def render_pdf(report: document.Report, path: pathlib.Path) -> None:
    """Write the report as an A4 PDF at `path`, atomically (no partial file on failure)."""
    path = pathlib.Path(path)
    temporary_path = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        template = _ReportDocTemplate(str(temporary_path), pagesize=PAGE_SIZE, leftMargin=MARGIN, rightMargin=MARGIN,
                                      topMargin=MARGIN, bottomMargin=MARGIN, title=report.title,
                                      subject=report.subtitle, creator="drol-diag")
        template.multiBuild(_story(report), onFirstPage=_no_footer, onLaterPages=_footer_painter(report.title))
        os.replace(temporary_path, path)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# Fonts


@functools.cache
def _register_fonts() -> None:
    """Register the DejaVu fallback faces with reportlab (once per process, when a text first needs them)."""
    for name in FALLBACK_FONTS.values():
        pdfmetrics.registerFont(TTFont(name, str(FONT_FOLDER / f"{name}.ttf")))


@functools.cache
def _glyphs(font_name: str) -> frozenset[int]:
    _register_fonts()
    return frozenset(pdfmetrics.getFont(font_name).face.charToGlyph)


def _encodable(character: str) -> bool:
    """Whether a built-in (Type 1, WinAnsiEncoding) font can show the character."""
    try:
        character.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def font_runs(text: str, font_name: str = FONT) -> list[tuple[str, str]]:
    """`text` as (font, text) runs: the built-in `font_name`, its DejaVu fallback where only that has a character,
    and a character neither has as its escape (\\u6570) in the built-in font, never an empty box."""
    fallback = FALLBACK_FONTS[font_name]
    runs: list[tuple[str, str]] = []
    for character in text:
        if _encodable(character):
            font, shown = font_name, character
        elif ord(character) in _glyphs(fallback):
            font, shown = fallback, character
        else:
            font, shown = font_name, (f"\\u{ord(character):04x}" if ord(character) <= 0xFFFF
                                      else f"\\U{ord(character):08x}")
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + shown)
        else:
            runs.append((font, shown))
    return runs


def printable(text: str, font_name: str = FONT) -> str:
    """`text` with the characters neither the font nor its fallback has escaped (font_runs), as plain text."""
    return "".join(run for _, run in font_runs(text, font_name))


def _text_width(text: str, font_name: str, font_size: float) -> float:
    """The width in points of `text` set as `font_runs` sets it."""
    return sum(stringWidth(run, font, font_size) for font, run in font_runs(text, font_name))


# ---------------------------------------------------------------------------------------------
# Styles


def _style(name: str, **attributes: object) -> ParagraphStyle:
    defaults = {"fontName": FONT, "fontSize": 10, "leading": 13.5, "textColor": TEXT_COLOR}
    return ParagraphStyle(name, **{**defaults, **attributes})


TITLE = _style("title", fontName=FONT_BOLD, fontSize=22, leading=27, spaceAfter=8)
SUBTITLE = _style("subtitle", fontSize=11, leading=15, textColor=MUTED_COLOR, spaceAfter=16)
SUMMARY_LINE = _style("summary", fontSize=11, leading=15, leftIndent=14, bulletIndent=2, spaceAfter=4)
SECTION_START_HEIGHT = 1.0 * inch  # a section starts on a new page unless this much of the page is left
CONTENTS_HEADING = _style("contents", fontName=FONT_BOLD, fontSize=13, leading=17, spaceBefore=22, spaceAfter=6)
CONTENTS_ENTRY = _style("contents-entry", fontSize=10.5, leading=16, leftIndent=0, rightIndent=24)
SECTION_HEADING = _style("section", fontName=FONT_BOLD, fontSize=16, leading=20, spaceAfter=10)
BODY = _style("body", fontSize=9, leading=11.5, spaceAfter=5)
TABLE_CAPTION = _style("table-caption", fontName=FONT_BOLD, fontSize=9, leading=12, spaceBefore=6, spaceAfter=4)
TABLE_NOTE = _style("table-note", fontSize=8, leading=10, textColor=MUTED_COLOR, spaceBefore=3)
FIGURE_CAPTION = _style("figure-caption", fontName=FONT_OBLIQUE, fontSize=8, leading=10, alignment=TA_CENTER,
                        textColor=MUTED_COLOR)
NOTICE_TEXT = _style("notice", fontSize=9.5, leading=12.5)
COMMAND_CAPTION = _style("command-caption", fontSize=9.5, leading=12.5, spaceBefore=4, spaceAfter=3)
CODE = _style("code", fontName=FONT_MONO, fontSize=8, leading=10)
FOOTER_FONT = (FONT, 8)


def _cell_styles(column_count: int) -> dict[str, ParagraphStyle]:
    """Paragraph styles of table cells: 8 pt, or 7 pt for tables wider than WIDE_TABLE_COLUMNS."""
    size = 7 if column_count > WIDE_TABLE_COLUMNS else 8
    leading = size + 2
    return {"text": _style("cell", fontSize=size, leading=leading, splitLongWords=1),
            "number": _style("cell-number", fontSize=size, leading=leading, alignment=TA_RIGHT, splitLongWords=1),
            "header": _style("cell-header", fontName=FONT_BOLD, fontSize=size, leading=leading, splitLongWords=1),
            "header-number": _style("cell-header-number", fontName=FONT_BOLD, fontSize=size, leading=leading,
                                    alignment=TA_RIGHT)}


# ---------------------------------------------------------------------------------------------
# Document template: contents entries, bookmarks and the footer


class _SectionHeading(Paragraph):
    """A section's heading; the template records its page for the contents and the PDF outline."""

    def __init__(self, title: str, key: str) -> None:
        super().__init__(_markup(title, SECTION_HEADING.fontName), SECTION_HEADING)
        self.title = title
        self.key = key


class _ReportDocTemplate(SimpleDocTemplate):
    """SimpleDocTemplate that turns each section heading into a contents entry and a bookmark."""

    def afterFlowable(self, flowable: Flowable) -> None:
        if isinstance(flowable, _SectionHeading):
            self.canv.bookmarkPage(flowable.key)
            self.canv.addOutlineEntry(flowable.title, flowable.key, level=0, closed=False)
            self.notify("TOCEntry", (0, _markup(flowable.title, CONTENTS_ENTRY.fontName), self.page, flowable.key))


def _no_footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
    """The title page has no footer."""


def _footer_painter(title: str) -> Callable[[Canvas, SimpleDocTemplate], None]:
    """A page callback drawing a rule, the report title (shortened to fit) and the page number."""
    font_name, font_size = FOOTER_FONT
    title_room = FRAME_WIDTH - 2 * cm
    shown_title = printable(title)
    while shown_title and _text_width(shown_title, font_name, font_size) > title_room:
        shown_title = shown_title[:-2] + "\u2026" if len(shown_title) > 2 else ""

    def paint(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setStrokeColor(RULE_COLOR)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, FOOTER_GAP + 10, PAGE_SIZE[0] - MARGIN, FOOTER_GAP + 10)
        canvas.setFillColor(MUTED_COLOR)
        x = MARGIN
        for run_font, run in font_runs(shown_title, font_name):
            canvas.setFont(run_font, font_size)
            canvas.drawString(x, FOOTER_GAP, run)
            x += stringWidth(run, run_font, font_size)
        canvas.setFont(font_name, font_size)
        canvas.drawRightString(PAGE_SIZE[0] - MARGIN, FOOTER_GAP, f"Page {doc.page}")
        canvas.restoreState()

    return paint


# ---------------------------------------------------------------------------------------------
# The story: title page, then one page-broken part per section


def _story(report: document.Report) -> list[Flowable]:
    story: list[Flowable] = [_para(report.title, TITLE)] + ([_para(report.subtitle, SUBTITLE)] if report.subtitle
                                                            else [])
    story += [_para(line, SUMMARY_LINE, bulletText="\u2022") for line in report.summary]
    for number, section in enumerate(report.sections, start=1):
        if number == 2:  # the first section (the summary of verdicts) shares page 1; the contents follow it
            story += [CondPageBreak(SECTION_START_HEIGHT), Paragraph("Contents", CONTENTS_HEADING), _contents()]
        elif number > 2:
            story.append(CondPageBreak(SECTION_START_HEIGHT))
        story.append(_SectionHeading(section.title, key=f"section-{number}"))
        for block in section.blocks:
            story.extend(_block(block))
    while isinstance(story[-1], Spacer):  # (the last block's spacer, past a full page, would open a blank one)
        story.pop()
    return story


def _contents() -> TableOfContents:
    contents = TableOfContents(dotsMinLevel=0)
    contents.levelStyles = [CONTENTS_ENTRY]
    return contents


def _markup(text: str, font_name: str = FONT) -> str:
    """Plain text made safe for reportlab's paragraph mini-markup (`&`, `<`, `>` escaped), in the style's font
    `font_name` with its DejaVu fallback for what that cannot encode (font_runs)."""
    return "".join(escape(run) if font == font_name else f'<font name="{font}">{escape(run)}</font>'
                   for font, run in font_runs(text, font_name))


def _para(text: str, style: ParagraphStyle, **options: object) -> Paragraph:
    """A paragraph of plain text in `style` (_markup with the style's font)."""
    return Paragraph(_markup(text, style.fontName), style, **options)


def _code(text: str, width: float) -> XPreformatted:
    """A command in Courier, wrapped to `width` points (spaces kept as typed)."""
    characters_per_line = max(8, int(width / (COURIER_ADVANCE * CODE.fontSize)))
    text = printable(text, FONT_MONO)  # (escapes first, so that lines are cut to the characters shown)
    lines = [wrapped for line in text.split("\n") for wrapped in _wrap_command_line(line, characters_per_line)]
    return XPreformatted(_markup("\n".join(lines), FONT_MONO), CODE)


def _wrap_command_line(line: str, characters_per_line: int) -> list[str]:
    """A command's line cut into lines of at most `characters_per_line`: after a space, '/' or ',' where they can
    (paths and comma lists break at their separators), inside a token only when it is longer than a line."""
    pieces = [piece for piece in re.split(r"(?<=[ /,])", line) if piece]
    lines, current = [], ""
    for piece in pieces:
        if len((current + piece).rstrip(" ")) <= characters_per_line:
            current += piece
            continue
        if current.strip():
            lines.append(current.rstrip(" "))
        current = piece
        while len(current.rstrip(" ")) > characters_per_line:
            lines.append(current[:characters_per_line])
            current = current[characters_per_line:]
    if current.strip() or not lines:
        lines.append(current.rstrip(" "))
    return lines


def _block(block: object) -> list[Flowable]:
    if isinstance(block, document.Paragraph):
        return [_para(block.text, BODY)]
    if isinstance(block, document.Notice):
        return [_notice(block), Spacer(1, 8)]
    if isinstance(block, document.Table):
        return _table(block)
    if isinstance(block, document.Figure):
        return [_figure(block)]
    if isinstance(block, document.Command):
        return [_command(block), Spacer(1, 6)]
    raise TypeError(f"unknown report block type: {type(block).__name__}")


def _boxed(flowables: list[Flowable], background: colors.Color, rule: colors.Color | None = None) -> LayoutTable:
    """Flowables in a one-cell, full-width box with a background (and a coloured left rule)."""
    box = LayoutTable([[flowables]], colWidths=[FRAME_WIDTH])
    commands = [("BACKGROUND", (0, 0), (-1, -1), background)] + [
        (f"{side}PADDING", (0, 0), (-1, -1), padding) for side, padding in zip(("LEFT", "RIGHT", "TOP", "BOTTOM"),
                                                                              BOX_PADDING)]
    if rule is not None:
        commands.append(("LINEBEFORE", (0, 0), (0, -1), 4, rule))
    box.setStyle(TableStyle(commands))
    return box


def _notice(notice: document.Notice) -> LayoutTable:
    """A coloured box with a bold label (so its kind does not rest on colour alone) and the command."""
    kind = notice.kind if notice.kind in NOTICE_LABELS else "warning"
    background, rule = NOTICE_COLORS[kind]
    content: list[Flowable] = [Paragraph(f"<b>{escape(NOTICE_LABELS[kind])}</b> "
                                         f"{_markup(notice.text, NOTICE_TEXT.fontName)}", NOTICE_TEXT)]
    if notice.command:
        content += [Spacer(1, 4), _code(notice.command, BOX_CONTENT_WIDTH)]
    return _boxed(content, background, rule)


def _command(command: document.Command) -> Flowable:
    """What the command is for, then the command in Courier on a grey box, kept together."""
    parts: list[Flowable] = []
    if command.caption:
        parts.append(_para(command.caption, COMMAND_CAPTION))
    parts.append(_boxed([_code(command.text, BOX_CONTENT_WIDTH)], CODE_BACKGROUND))
    return KeepTogether(parts)


def _table(table: document.Table) -> list[Flowable]:
    """Caption, a LongTable of wrapping cells that repeats its header row, then the note."""
    column_count = len(table.columns)
    if column_count == 0:  # nothing to lay out: keep the caption and note only
        texts = [(table.caption, TABLE_CAPTION), (table.note, TABLE_NOTE)]
        return [_para(text, style) for text, style in texts if text]
    styles = _cell_styles(column_count)
    rows = [tuple(row[:column_count]) + ("",) * (column_count - len(row)) for row in table.rows]
    header = [_para(title, styles["header-number" if numeric else "header"])
              for title, numeric in zip(table.columns, numeric_columns(table))]
    body = [[_para(cell, styles["number" if looks_numeric(cell) else "text"]) for cell in row] for row in rows]
    cell_padding = 2 if column_count > WIDE_TABLE_COLUMNS else 3
    widths = _column_widths(table.columns, rows, styles["text"].fontSize, cell_padding)
    layout = LongTable([header, *body], colWidths=widths, repeatRows=1, hAlign="LEFT")
    everywhere = ((0, 0), (-1, -1))
    layout.setStyle(TableStyle([
        ("GRID", *everywhere, 0.4, RULE_COLOR), ("BACKGROUND", (0, 0), (-1, 0), HEADER_BACKGROUND),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, ZEBRA_BACKGROUND]), ("VALIGN", *everywhere, "TOP"),
        ("LEFTPADDING", *everywhere, cell_padding), ("RIGHTPADDING", *everywhere, cell_padding),
        ("TOPPADDING", *everywhere, 2), ("BOTTOMPADDING", *everywhere, 3)]))
    # A caption is not left alone at the foot of a page: a new page unless its table can start there.
    # (keepWithNext would move a whole long table to the next page, leaving a gap.)
    flowables: list[Flowable] = [CondPageBreak(TABLE_START_HEIGHT)]
    if table.caption:
        flowables.append(_para(table.caption, TABLE_CAPTION))
    flowables.append(layout)
    if table.note:
        flowables.append(_para(table.note, TABLE_NOTE))
    flowables.append(Spacer(1, 8))
    return flowables


def _column_widths(columns: tuple[str, ...], rows: list[tuple[str, ...]], font_size: float,
                   cell_padding: float) -> list[float]:
    """Column widths (points) that fill the frame: each column first gets its least width, the first that fits of
    (a) numbers unbroken and text broken between words, (b) every word unbroken, (c) the words' widths shrunk (long
    words then split); the rest is shared in proportion to what each needs to show its longest cell on one line."""
    padding = 2 * cell_padding + 1  # 1 pt to spare for rounding

    def width(text: str, bold: bool = False) -> float:
        return _text_width(text, FONT_BOLD if bold else FONT, font_size) + padding

    def longest_word(text: str, bold: bool = False) -> float:
        return max((width(word, bold) for word in text.split()), default=padding)

    one_line, unbroken_numbers, unbroken_words = [], [], []
    for index, title in enumerate(columns):
        cells = [row[index] for row in rows]
        words = [longest_word(title, bold=True), *(longest_word(cell) for cell in cells)]
        numbers = [width(cell) for cell in cells if looks_numeric(cell)]
        one_line.append(max([words[0], *(width(cell) for cell in cells)]))  # headers may wrap
        unbroken_words.append(max(words))
        unbroken_numbers.append(max([*words, *numbers]))
    if sum(one_line) <= FRAME_WIDTH:
        return [FRAME_WIDTH * natural / sum(one_line) for natural in one_line]
    for least in (unbroken_numbers, unbroken_words):
        if sum(least) <= FRAME_WIDTH:
            room = FRAME_WIDTH - sum(least)
            wants = [natural - minimum for natural, minimum in zip(one_line, least)]
            return [minimum + room * want / sum(wants) for minimum, want in zip(least, wants)]
    return [FRAME_WIDTH * minimum / sum(unbroken_words) for minimum in unbroken_words]


def _figure(figure: document.Figure) -> Flowable:
    """The PNG at its drawn size, shrunk to the frame width and 60 % of its height, with its caption."""
    pixel_width, pixel_height = ImageReader(io.BytesIO(figure.png)).getSize()
    width = min(figure.width_in * inch, FRAME_WIDTH)
    height = width * pixel_height / pixel_width
    if height > FIGURE_MAX_HEIGHT:
        width, height = width * FIGURE_MAX_HEIGHT / height, FIGURE_MAX_HEIGHT
    image = Image(io.BytesIO(figure.png), width=width, height=height)
    image.hAlign = "CENTER"
    parts: list[Flowable] = [Spacer(1, 4), image]
    if figure.caption:
        parts += [Spacer(1, 4), _para(figure.caption, FIGURE_CAPTION)]
    parts.append(Spacer(1, 10))
    return KeepTogether(parts)
