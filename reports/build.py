"""`drol-diag report DIR`: read the runs (reports.runs), compute (reports.analysis), write the sections
(reports.sections) as report.html, report.pdf, scores.csv and report.json, whole or not at all (temporaries renamed).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drol_diag.runfolder import store
from reports import stats
from reports.analysis import analyse, analysis_json
from reports.document import Paragraph, Report
from reports.runs import Results, SkippedRunInfo, read_results
from reports.sections import all_sections, summary_lines, verdict_rows


class ReportError(ValueError):
    """The folder cannot be reported on; the message is one line saying why and what to do."""


@dataclass(frozen=True)
class Outputs:
    html: Path
    pdf: Path
    scores_csv: Path
    report_json: Path
    figures: Path | None = None  # a folder for every figure as <name>.png (None: figures only inside the reports)


def default_outputs(root: Path, html: Path | None = None, pdf: Path | None = None,
                    figures: Path | None = None) -> Outputs:
    return Outputs(html or root / "report.html", pdf or root / "report.pdf", root / "scores.csv",
                   root / "report.json", figures)


def load(root: Path) -> Results:
    """Read a results folder, turning every way it can be unreadable into a one-line ReportError."""
    from diagnostics.runs import RunsError

    check_root(root)
    try:
        results = read_results(root)
    except FileNotFoundError:
        raise ReportError(f"no runs under {root}: a run folder holds {store.CONFIG_FILE} and logs.zarr; make some "
                          f"with e.g. `drol-diag sweep --ablations dynamic,static-routing --out {root}`") from None
    except RunsError as error:
        raise ReportError(str(error)) from None
    return results


def build(results: Results, reps: int = stats.DEFAULT_REPS, seed: int = stats.DEFAULT_SEED) -> tuple[Report, dict]:
    """The report and report.json's content."""
    analysis = analyse(results, reps=reps, seed=seed)
    summary = summary_lines(results, analysis)
    verdicts = verdict_rows(results, analysis)
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    report = Report(title="drol-diag report: does dynamic routing work, and why?",
                    subtitle=f"runs under {results.root.resolve()}; made {when}", summary=summary,
                    sections=all_sections(results, analysis, verdicts))
    record = {"summary": list(summary), "root": str(results.root.resolve()), "inventory": inventory_json(results),
              **({"grid": {label: {"ablation": point.ablation, "settings": dict(point.settings)}  # (label: its point)
                           for label, point in results.grid.items()}} if results.grid else {}),
              **analysis_json(analysis, results),
              "verdicts": [row.json() for row in verdicts],
              "answers": {s.anchor: [b.text for b in s.blocks if isinstance(b, Paragraph)]
                          for s in report.sections}}
    return report, record


def inventory_json(results: Results) -> dict:
    """report.json's account of the run folders: how many were found, which were read, which skipped and why."""
    return {"run_folders_found": results.found, "read": [r.run_dir for r in results.runs],
            "skipped": [{"run_dir": s.run_dir, "reason": s.reason, "task": s.task or None,
                         "ablation": s.ablation or None, "k": s.k} for s in results.skipped]}


def skipped_line(skipped: SkippedRunInfo) -> str:
    """One line for stderr: 'skipped run folder PATH: REASON (it would be TASK ABLATION K=K)'."""
    would_be = f" (it would be {skipped.task} {skipped.ablation} K={skipped.k})" if skipped.task else ""
    return f"skipped run folder {skipped.run_dir}: {skipped.reason}{would_be}"


def check_strict(results: Results) -> None:
    """ReportError (--strict) when any run folder was skipped, naming each with its reason."""
    if results.skipped:
        listed = "; ".join(f"{s.run_dir}: {s.reason}" for s in results.skipped)
        raise ReportError(f"--strict: {len(results.skipped)} of the {results.found} run folders under {results.root} "
                          f"could not be read ({listed}); repair or remove them, or report without --strict "
                          "to list them as skipped")


def check_root(root: Path) -> None:
    if not root.is_dir():
        raise ReportError(f"no such folder: {root} (give a results folder written by `drol-diag run` or "
                          "`drol-diag sweep`, e.g. runs/)")


def check_options(outputs: Outputs | None, reps: int) -> None:
    """ReportError for a repetition count below 10 or an output whose folder does not exist or takes no files."""
    if reps < 10:
        raise ReportError(f"--reps must be at least 10 (got {reps}); the default is {stats.DEFAULT_REPS}")
    for path in (outputs.html, outputs.pdf, outputs.scores_csv) if outputs else ():
        if not path.parent.is_dir():
            raise ReportError(f"cannot write {path}: folder {path.parent} does not exist")
        reason = store.cannot_write_in(path.parent)
        if reason:
            raise ReportError(f"cannot write {path}: nothing can be made in folder {path.parent} ({reason})")
    figures = outputs.figures if outputs else None
    if figures is not None and (figures.exists() and not figures.is_dir() or not figures.parent.is_dir()):
        raise ReportError(f"cannot write figures into {figures}: give a folder (made if missing) whose parent "
                          "exists")


def write(report: Report, record: dict, results: Results, outputs: Outputs) -> None:
    """Write the four files and, with `outputs.figures`, every figure as FOLDER/<name>.png, all or none (the module
    docstring); an output that cannot be written is a one-line ReportError, anything else is raised as it is."""
    from reports.html import render_html
    from reports.pdf import render_pdf

    files = {outputs.scores_csv: results.scores.to_csv(index=False).encode(),
             outputs.report_json: json.dumps(_json_safe(record), indent=1, allow_nan=False).encode(),
             outputs.html: render_html(report).encode("utf-8")}
    if outputs.figures is not None:
        files.update((outputs.figures / f"{figure.name}.png", figure.png) for figure in report.figures())
    new_figures = outputs.figures is not None and not outputs.figures.exists()
    temporaries: dict[Path, Path] = {}  # {output: its temporary file}
    path, renamed = outputs.pdf, 0
    try:
        if new_figures:
            path = outputs.figures
            path.mkdir()
        for path, data in files.items():
            temporaries[path] = store.write_temporary(path, data)
        path = outputs.pdf
        temporaries[path] = store.temporary_name(path)
        render_pdf(report, temporaries[path])
        for path, temporary in temporaries.items():
            os.replace(temporary, path)
            renamed += 1
    except BaseException as error:
        for temporary in temporaries.values():
            temporary.unlink(missing_ok=True)
        if new_figures:
            with contextlib.suppress(OSError):  # (a folder this call made, left empty)
                outputs.figures.rmdir()
        if isinstance(error, OSError) and error.errno is not None:  # (the system's: not, e.g., PIL's bad image)
            kept = f"only {renamed} of the {len(temporaries)} outputs were replaced" if renamed else \
                "nothing was written (earlier outputs are kept)"
            raise ReportError(f"cannot write {path}: {error.strerror or error}; {kept}") from None
        raise


def _json_safe(value):
    """NaN and infinities as null (report.json is strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def make_report(root: Path, html: Path | None = None, pdf: Path | None = None, reps: int = stats.DEFAULT_REPS,
                seed: int = stats.DEFAULT_SEED, strict: bool = False, figures: Path | None = None,
                warn: Callable[[str], None] | None = None) -> tuple[Outputs, tuple[str, ...]]:
    """Everything `drol-diag report` does (options checked before anything is read; each skipped run folder passed
    to `warn` as one line); returns where it wrote and the three summary lines."""
    outputs = default_outputs(root, html, pdf, figures)
    check_root(root)
    check_options(outputs, reps)
    results = load(root)
    for skipped in results.skipped:
        if warn is not None:
            warn(skipped_line(skipped))
    if strict:
        check_strict(results)
    report, record = build(results, reps, seed)
    write(report, record, results, outputs)
    return outputs, report.summary
