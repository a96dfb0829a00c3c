"""The codebase's shape: layers whose imports go one way, no import circles, a method layer without
I/O, and the registry of diagnostic quantities held against docs/diagnostics.md (against real logs: test_variants.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from diagnostics.quantities import markdown_table

ROOT = Path(__file__).resolve().parent.parent
# Each top-level package is one layer; imports may only go to the same layer or below. The command line
# alone sits on top of ablations and reports.
LAYERS = {"drol": 0, "drol_diag": 1, "diagnostics": 2, "training": 3, "ablations": 4, "reports": 4, "cli": 5}
PACKAGES = tuple(LAYERS)
FORBIDDEN_IN_METHOD = ("open(", "os.environ", "np.load", "print(", "subprocess", "multiprocessing", "sys.path")


def module_files() -> dict[str, Path]:
    """{dotted module name: file} of every module of the project's packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_modules(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports anywhere in it (inside functions too): `from a.b import c`
    counts as a.b.c when that is a module, else as a.b."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m in modules and m != name}


def layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


@pytest.fixture(scope="module")
def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(path, name, modules) for name, path in modules.items()}


def test_imports_go_down_the_layers_only(import_graph):
    upward = [f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
              for module, targets in import_graph.items() for target in targets if layer(target) > layer(module)]
    assert not upward, "\n".join(upward)


def test_only_the_command_line_imports_ablations_and_reports(import_graph):
    importers = {module for module, targets in import_graph.items()
                 if any(t.split(".")[0] in ("ablations", "reports") for t in targets)
                 and module.split(".")[0] not in ("ablations", "reports")}
    assert {m.split(".")[0] for m in importers} <= {"cli"}, importers


def test_the_report_reads_runs_not_tasks(import_graph):
    """What a report needs of a task (its reference levels and yardstick) is in each run's config.json."""
    readers = {module: sorted(t for t in targets if t.startswith("drol_diag.tasks"))
               for module, targets in import_graph.items() if module.startswith("reports")}
    assert not any(readers.values()), {module: tasks for module, tasks in readers.items() if tasks}


def test_there_are_no_import_circles(import_graph):
    """Depth-first search for a cycle among modules (a package's __init__ is a module of its own)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(import_graph[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [module, target]) if target in path
                              else f"{module} -> {target}")
            elif target not in state:
                visit(target, path + [module])
        state[module] = 2
    for module in sorted(import_graph):
        if module not in state:
            visit(module, [])
    assert not cycles, "\n".join(cycles)


def test_the_method_layer_does_no_io():
    offences = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
                for path in sorted((ROOT / "drol").rglob("*.py"))
                for number, line in enumerate(path.read_text().splitlines(), 1)
                for word in FORBIDDEN_IN_METHOD if word in line]
    assert not offences, "\n".join(offences)


def test_the_code_cites_the_spec_inside_the_repository():
    assert (ROOT / "docs" / "drol-spec.md").is_file()
    outside = [str(path.relative_to(ROOT)) for package in PACKAGES for path in (ROOT / package).rglob("*.py")
               if "shared/drol-spec" in path.read_text()]
    assert not outside, outside


def test_the_docs_table_of_quantities_is_the_registry():
    page = (ROOT / "docs" / "diagnostics.md").read_text()
    assert markdown_table() in page, "docs/diagnostics.md's table of quantities differs from diagnostics.quantities; " \
                                     "paste diagnostics.quantities.markdown_table() into it"
