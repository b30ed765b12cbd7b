"""The shape of the code: every module imports alone, no import cycle, core modules know nothing of the CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

OPS = REPO / "ops"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(OPS.rglob("*.py"))}


def imports_of(path: Path) -> set[str]:
    """Every ops module ``path`` imports, at its top or inside a function (deferred imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name in MODULES}


def test_no_import_cycle():
    graph = {name: imports_of(path) - {name} for name, path in MODULES.items()}
    # Importing a package's own modules from its __init__ is how a package works, not a cycle.
    graph = {n: {d for d in deps if not n.startswith(d + ".")} for n, deps in graph.items()}
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        assert node not in stack, "import cycle: " + " -> ".join([*stack[stack.index(node) :], node])
        if node in done:
            return
        for dep in sorted(graph[node]):
            visit(dep, [*stack, node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])


def test_every_module_imports_alone():
    procs = {
        name: subprocess.Popen([sys.executable, "-c", f"import {name}"], cwd=REPO, stderr=subprocess.PIPE, text=True)
        for name in MODULES
        if name != "ops.__main__"  # runs the CLI when imported
    }
    failures = {name: p.communicate()[1].strip().splitlines()[-1:] for name, p in procs.items() if p.wait() != 0}
    assert failures == {}


def test_core_modules_know_nothing_of_the_cli():
    for name, path in MODULES.items():
        if name.startswith("ops.cli") or name == "ops.__main__":
            continue
        tree = ast.parse(path.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {i for i in imported if i == "click" or i.startswith(("click.", "ops.cli"))}, name
        prints = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"]
        assert not prints, f"{name} prints"


def test_no_module_is_long_without_saying_why():
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        if len(lines) > 330:
            head = "\n".join(lines[:15]).lower()
            assert "long because" in head, f"{name} has {len(lines)} lines and does not say why at its top"
