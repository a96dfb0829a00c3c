"""The Python of the README, the docs/ pages and examples/ run as written, on a sweep with several K and ablations.

Every ```python block of README.md, examples/README.md and every docs/*.md page is executed (each in a
fresh namespace, in this process, matplotlib on Agg) in a folder where `runs/` is a copy of
tests/conftest.py's small_sweep (modes-2d x {dynamic, static-routing} x K {2, 4} x seeds 0-2: the
realistic case of a sweep) and `runs/demo/arc-2d/dynamic-k4` (the run `make demo` writes, which the README
and docs/options.md open with plain xarray and `training.load_run`) links to one of its runs (a linked
folder, which open_runs does not search). So the snippets keep the paths a user types. examples/diagnostics.ipynb is executed with nbclient in a kernel started in that
folder's `examples/`, with its default results folder (`runs/`, found from examples/).

Not executed: fenced blocks that are not ```python (```bash: shell commands; ```toml; the run folder
layout) and ```python blocks whose first line is a `# fragment: ...` comment (code to paste into a
project file, using names from around it), which the documents mark so;
test_every_python_block_is_run_or_marked_a_fragment keeps the two kinds accounted for.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# The docs/ pages by glob, so that a new page's blocks are run too (docs/drol-spec.md has none).
DOCUMENTS = ("README.md", "examples/README.md",
             *sorted(str(page.relative_to(ROOT)) for page in (ROOT / "docs").glob("*.md")))
NOTEBOOK = ROOT / "examples" / "diagnostics.ipynb"
FRAGMENT_MARK = "# fragment:"
# A fenced block: its language and its text (indented fences included, as in a Markdown list).
FENCE = re.compile(r"^([ \t]*)```(\w*)[ \t]*\n(.*?)^\1```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(document: str) -> list[tuple[str, str]]:
    """(where, code) for each ```python block of `document` (relative to the repository root); where is
    `document:line` of the block's first code line."""
    text = (ROOT / document).read_text()
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(2) == "python":
            line = text.count("\n", 0, match.start(3)) + 1
            blocks.append((f"{document}:{line}", match.group(3)))
    return blocks


def is_fragment(code: str) -> bool:
    return code.lstrip().startswith(FRAGMENT_MARK)


RUNNABLE = [(where, code) for document in DOCUMENTS for where, code in python_blocks(document) if not is_fragment(code)]


@pytest.fixture(scope="module")
def user_folder(small_sweep, tmp_path_factory) -> Path:
    """A folder as a user's: runs/ (the sweep, a copy), runs/demo/arc-2d/dynamic-k4 (a link to one of
    its runs) and an empty examples/ (where Jupyter starts a notebook's kernel)."""
    folder = tmp_path_factory.mktemp("user")
    shutil.copytree(small_sweep, folder / "runs", symlinks=True)
    demo = folder / "runs" / "demo" / "arc-2d" / "dynamic-k4"
    demo.parent.mkdir(parents=True)
    demo.symlink_to(folder / "runs" / "modes-2d" / "dynamic-k4", target_is_directory=True)
    (folder / "examples").mkdir()
    return folder


def test_every_python_block_is_run_or_marked_a_fragment():
    for document in DOCUMENTS:
        text = (ROOT / document).read_text()
        blocks = python_blocks(document)
        assert len(blocks) == len(re.findall(r"^[ \t]*```python[ \t]*$", text, re.MULTILINE)), document
    runnable = {where for where, _ in RUNNABLE}
    uses_runs = [where for document in DOCUMENTS for where, code in python_blocks(document) if "open_runs(" in code]
    assert uses_runs and set(uses_runs) <= runnable  # the runs API's examples are never left out
    assert any(where.startswith("examples/") for where in uses_runs)


@pytest.mark.parametrize("where,code", RUNNABLE, ids=[where for where, _ in RUNNABLE])
def test_python_block_runs_as_written_on_a_sweep_with_several_k_and_ablations(where, code, user_folder,
                                                                             monkeypatch):
    monkeypatch.chdir(user_folder)
    try:
        exec(compile(code, where, "exec"), {"__name__": "__main__"})  # raises what the snippet raises
    finally:
        plt.close("all")


def test_diagnostics_notebook_runs_on_a_sweep_with_several_k_and_ablations_and_shows_every_k(user_folder,
                                                                                            monkeypatch):
    import nbclient
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # kept without outputs
    top = notebook.cells[0].source
    assert "DROL_RESULTS" in top and "Parameters" in top  # the runs folder's parameter, documented at the top
    # After the notebook, in its kernel: per figure, the number of panels and of panels with finite data.
    notebook.cells.append(nbformat.v4.new_code_cell(
        "print('panels', [(len(f.axes), sum(any(np.isfinite(l.get_ydata()).any() for l in a.lines) for a in f.axes))"
        " for f in map(plt.figure, plt.get_fignums())])"))
    monkeypatch.delenv("DROL_RESULTS", raising=False)  # the default: runs/ from examples/
    monkeypatch.setenv("MPLBACKEND", "Agg")  # (the kernel's figures are not rendered to PNG)
    client = nbclient.NotebookClient(notebook, timeout=300, startup_timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(user_folder / "examples")}})
    client.execute()  # raises CellExecutionError when a cell raises

    printed = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
                      if output.get("name") == "stdout")
    assert "task modes-2d; K shown: [2, 4] (every K in the results)" in printed
    assert "ablations ['dynamic', 'static-routing'], seeds [0, 1, 2]" in printed
    panels = ast.literal_eval(printed.split("panels ")[-1].strip())
    assert len(panels) >= 6
    # Every figure has a panel per K (x ablation), each holding data: none keeps one K only.
    assert panels[0] == (2, 2) and all(figure == (4, 4) for figure in panels[1:]), panels


def test_my_task_loads_as_the_docs_run_it_and_scores_as_its_docstring_says(monkeypatch):
    """examples/my_task.py through the loader `drol-diag run --task examples.my_task:make_task` uses (from the
    repository root); heading straight for the origin always arrives, the behaviour's mean action in 42%."""
    import numpy as np

    from drol_diag.tasks import load_task

    monkeypatch.chdir(ROOT)
    task = load_task("examples.my_task:make_task")
    from examples.my_task import PULL  # (importable now: the loader put the current folder on sys.path)

    rows = task.dataset["observations"].shape[0]
    assert task.dataset["observations"].shape == task.dataset["actions"].shape == (rows, 2) and rows > 1000
    straight = lambda states: -states / np.maximum(np.linalg.norm(states, axis=-1, keepdims=True), 1e-6)
    assert task.evaluate(straight, 64, 0)["score"] == 1.0
    assert round(task.evaluate(lambda states: PULL * straight(states), 64, 0)["score"], 2) == 0.42
