"""The report as data: sections of paragraphs, tables, figures and commands, rendered to HTML (reports.html) and
PDF (reports.pdf) alike. Every block holds finished text, figures PNG bytes; renderers only lay them out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Paragraph:
    """Plain text (no markup); a renderer escapes it."""

    text: str


@dataclass(frozen=True)
class Notice:
    """A highlighted box: what the data cannot answer and, where it helps, the command that fills the gap."""

    kind: str  # "missing" (a section lacks runs: `command` says what to run) or "warning" (read with care)
    text: str
    command: str = ""


@dataclass(frozen=True)
class Table:
    """A table of formatted cells: `columns` (C,) header strings, `rows` (R, C) strings."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""  # a line under the table (units, what the intervals are)


@dataclass(frozen=True)
class Figure:
    """A rendered matplotlib figure: `png` bytes at `dpi`, drawn `width_in` x `height_in` inches."""

    name: str  # short identifier, unique in the report (file-name safe)
    caption: str  # also the image's alternative text
    png: bytes
    width_in: float
    height_in: float
    dpi: int


@dataclass(frozen=True)
class Command:
    """A shell command shown verbatim (monospace), with what it is for."""

    caption: str
    text: str


Block = Union[Paragraph, Notice, Table, Figure, Command]


@dataclass(frozen=True)
class Section:
    """One titled part of the report; `anchor` is its id in the HTML (letters, digits, '-')."""

    anchor: str
    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Report:
    """The whole report: a title, a three-line summary, then the sections in order."""

    title: str
    subtitle: str  # where the runs are and when the report was made
    summary: tuple[str, ...]
    sections: tuple[Section, ...]

    def figures(self) -> list[Figure]:
        """Every figure of the report, in order."""
        return [block for section in self.sections for block in section.blocks if isinstance(block, Figure)]
