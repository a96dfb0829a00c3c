"""Render a reports.document.Report as one self-contained HTML5 page: inline stylesheet, figures as base64 PNG
data URLs, no scripts, fonts or links; every text escaped, so text that looks like markup shows literally."""

from __future__ import annotations

import base64
import html
import re

from reports.document import Command, Figure, Notice, Paragraph, Report, Section, Table

CSS_PIXELS_PER_INCH = 96

# A cell "looks numeric" when it starts like a number: "0.61 [0.55, 0.66]", "-3.2", "+4%", ".5", "−1".
_NUMERIC_CELL = re.compile(r"^\s*[-+\u2212\u00b1]?\s*\.?\d")

SHORT_CELL_CHARACTERS = 24  # text cells up to this long are kept on one line (row labels)

NOTICE_LABELS = {"missing": "Missing runs:", "warning": "Caution:"}

STYLESHEET = """
:root {
  --text: #1f2328; --muted: #59636e; --rule: #d1d9e0; --zebra: #f6f8fa; --accent: #0b5cad;
  --code-bg: #f3f4f6;
  --missing-bg: #fff6dd; --missing-rule: #b7791f;
  --warning-bg: #fdecec; --warning-rule: #c0392b;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0 auto; padding: 24px 28px 64px; max-width: 1100px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans",
    "Liberation Sans", sans-serif;
  font-size: 16px; line-height: 1.55; color: var(--text); background: #fff;
}
header { border-bottom: 2px solid var(--rule); padding-bottom: 12px; margin-bottom: 20px; }
h1 { font-size: 1.9rem; line-height: 1.25; margin: 0.2em 0 0.15em; }
.subtitle { color: var(--muted); margin: 0 0 0.9em; }
ul.summary {
  margin: 0; padding: 12px 16px 12px 34px; background: #eef5fc;
  border-left: 4px solid var(--accent); border-radius: 4px;
}
ul.summary li { margin: 0.15em 0; }
nav.contents { margin: 0 0 28px; }
nav.contents h2 { font-size: 1.15rem; margin: 0 0 0.3em; border: 0; padding: 0; }
nav.contents ol { margin: 0; padding-left: 1.6em; }
nav.contents a { color: var(--accent); text-decoration: none; }
nav.contents a:hover, nav.contents a:focus { text-decoration: underline; }
section { margin: 0 0 40px; }
section > h2 {
  font-size: 1.45rem; line-height: 1.3; margin: 1.4em 0 0.6em; padding-bottom: 4px;
  border-bottom: 1px solid var(--rule);
}
p { margin: 0.6em 0; }
.table-block { margin: 1.2em 0; }
.table-caption { font-weight: 600; margin: 0 0 0.4em; }
.table-scroll { overflow-x: auto; border: 1px solid var(--rule); border-radius: 4px; } /* a last resort: cells wrap */
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; text-align: left; vertical-align: top; border-bottom: 1px solid var(--rule); }
th { background: #e9eef3; font-weight: 600; }
tbody tr:nth-child(even) { background: var(--zebra); }
tbody tr:last-child td { border-bottom: 0; }
th.num, td.num { text-align: right; }
td { overflow-wrap: anywhere; }
td.num, td.short { overflow-wrap: normal; }
.table-note { color: var(--muted); font-size: 0.85rem; margin: 0.35em 0 0; }
.notice {
  margin: 1.1em 0; padding: 10px 14px; border-left: 6px solid; border-radius: 4px;
}
.notice p { margin: 0; }
.notice.missing { background: var(--missing-bg); border-color: var(--missing-rule); }
.notice.warning { background: var(--warning-bg); border-color: var(--warning-rule); }
.notice .label { font-weight: 700; }
.notice pre { margin: 8px 0 0; background: rgba(255, 255, 255, 0.7); }
.command { margin: 1.1em 0; }
.command-caption { margin: 0 0 0.3em; }
pre {
  margin: 0; padding: 9px 12px; background: var(--code-bg); border: 1px solid var(--rule);
  border-radius: 4px; white-space: pre-wrap; overflow-wrap: anywhere;
}
code, pre {
  font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono",
    "Liberation Mono", monospace;
  font-size: 0.86rem;
}
figure { margin: 1.4em 0; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 0.4em; text-align: center; }
@media (max-width: 700px) {
  body { padding: 14px 12px 40px; font-size: 15px; }
  h1 { font-size: 1.5rem; }
}
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  nav.contents a { color: inherit; }
  section { break-before: page; page-break-before: always; }
  section > h2, .table-caption, .command-caption { break-after: avoid; page-break-after: avoid; }
  figure, .table-block, .notice, .command, pre, tr {
    break-inside: avoid; page-break-inside: avoid;
  }
  .table-scroll { overflow: visible; border: 0; }
  table { font-size: 8pt; }
  th, td { padding: 2px 5px; }
  td.num, td.short { white-space: normal; }
  thead { display: table-header-group; }
}
"""


def looks_numeric(cell: str) -> bool:
    """Whether a table cell reads as a number (so it is right-aligned): it starts with a digit, a
    sign or a decimal point, as in "12", "-0.3", "+4%" or "0.61 [0.55, 0.66]"."""
    return bool(_NUMERIC_CELL.match(cell))


def numeric_columns(table: Table) -> list[bool]:
    """For each column, whether all its non-empty cells look numeric (its header is then right-aligned)."""
    flags = []
    for index in range(len(table.columns)):
        cells = [row[index] for row in table.rows if index < len(row) and row[index].strip()]
        flags.append(bool(cells) and all(looks_numeric(cell) for cell in cells))
    return flags


def render_html(report: Report) -> str:
    """The report as one self-contained HTML5 document (inline CSS, embedded PNG figures)."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_text(report.title)}</title>", f"<style>{STYLESHEET}</style>", "</head>", "<body>",
             _header(report), _contents(report.sections), "<main>",
             *(_section(section) for section in report.sections), "</main>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _text(text: str) -> str:
    return html.escape(text, quote=True)


def _header(report: Report) -> str:
    subtitle = [f'<p class="subtitle">{_text(report.subtitle)}</p>'] if report.subtitle else []
    summary = ['<ul class="summary">', *(f"<li>{_text(line)}</li>" for line in report.summary), "</ul>"] \
        if report.summary else []
    return "\n".join(["<header>", f"<h1>{_text(report.title)}</h1>", *subtitle, *summary, "</header>"])


def _contents(sections: tuple[Section, ...]) -> str:
    if not sections:
        return ""
    items = "\n".join(f'<li><a href="#{_text(section.anchor)}">{_text(section.title)}</a></li>' for section in sections)
    return f'<nav class="contents" aria-label="Contents">\n<h2>Contents</h2>\n<ol>\n{items}\n</ol>\n</nav>'


def _section(section: Section) -> str:
    return "\n".join([f'<section id="{_text(section.anchor)}">', f"<h2>{_text(section.title)}</h2>",
                      *map(_block, section.blocks), "</section>"])


def _block(block: object) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{_text(block.text)}</p>"
    if isinstance(block, Notice):
        return _notice(block)
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block)
    if isinstance(block, Command):
        return _command(block)
    raise TypeError(f"unknown report block type: {type(block).__name__}")


def _notice(notice: Notice) -> str:
    """A coloured box with a bold label (so the kind does not rest on colour alone)."""
    kind = notice.kind if notice.kind in NOTICE_LABELS else "warning"
    label = NOTICE_LABELS[kind]
    role = "note" if kind == "missing" else "alert"
    command = [f"<pre><code>{_text(notice.command)}</code></pre>"] if notice.command else []
    return "\n".join([f'<div class="notice {kind}" role="{role}">',
                      f'<p><span class="label">{_text(label)}</span> {_text(notice.text)}</p>', *command, "</div>"])


def _table(table: Table) -> str:
    """Caption, the table (numeric cells right-aligned; cells wrap, between words first, so that every column
    shows within the page's width rather than behind a sideways scroll), then the note."""
    header = "".join(f'<th scope="col" class="num">{_text(column)}</th>' if numeric else
                     f'<th scope="col">{_text(column)}</th>' for column, numeric in zip(table.columns,
                                                                                          numeric_columns(table)))
    body_rows = [f"<tr>{''.join(_cell(cell) for cell in row)}</tr>" for row in table.rows]
    lines = ['<div class="table-block">']
    if table.caption:
        lines.append(f'<p class="table-caption">{_text(table.caption)}</p>')
    lines += ['<div class="table-scroll">', "<table>", f"<thead><tr>{header}</tr></thead>", "<tbody>", *body_rows,
              "</tbody>", "</table>", "</div>"]
    if table.note:
        lines.append(f'<p class="table-note">{_text(table.note)}</p>')
    lines.append("</div>")
    return "\n".join(lines)


def _cell(cell: str) -> str:
    """A body cell: numbers right-aligned, and like short labels breaking only between words ('0.61' over
    '[0.55, 0.66]'), where the table would not fit otherwise; longer text wraps anywhere it must."""
    if looks_numeric(cell):
        return f'<td class="num">{_text(cell)}</td>'
    if len(cell) <= SHORT_CELL_CHARACTERS:
        return f'<td class="short">{_text(cell)}</td>'
    return f"<td>{_text(cell)}</td>"


def _figure(figure: Figure) -> str:
    """The PNG embedded as a data URL, drawn at its size in inches (never wider than the page)."""
    width_px = max(1, round(figure.width_in * CSS_PIXELS_PER_INCH))
    height_px = max(1, round(figure.height_in * CSS_PIXELS_PER_INCH))
    data = base64.b64encode(figure.png).decode("ascii")
    return (f'<figure id="figure-{_text(figure.name)}">\n'
            f'<img src="data:image/png;base64,{data}" alt="{_text(figure.caption)}" '
            f'width="{width_px}" height="{height_px}" style="width:{width_px}px;max-width:100%;height:auto">\n'
            f"<figcaption>{_text(figure.caption)}</figcaption>\n</figure>")


def _command(command: Command) -> str:
    caption = [f'<p class="command-caption">{_text(command.caption)}</p>'] if command.caption else []
    return "\n".join(['<div class="command">', *caption, f"<pre><code>{_text(command.text)}</code></pre>", "</div>"])
