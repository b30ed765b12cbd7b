"""The shape of the code: every module imports alone, no import cycle, core modules know nothing of the CLI."""

from __future__ import annotations

import ast
import re
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


def test_storage_knows_only_files():
    """Nothing of ops/storage imports the database side (rows and files meet in storage_check, storage_orphans)."""
    for name, path in MODULES.items():
        if name.startswith("ops.storage."):
            tree = ast.parse(path.read_text())
            imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
            imported |= {
                f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
            }
            bad = {i for i in imported if i.startswith(("psycopg", "ops.db", "ops.queries", "ops.schema"))}
            assert not bad, f"{name} imports {bad}"


SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|WITH|REFRESH|LOCK|TRUNCATE|DECLARE|FETCH|"
                       r"CLOSE|VACUUM|ANALYZE|COPY|GRANT|COMMENT|SET|SHOW|RESET)\b")  # fmt: skip
RELATION = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][\w.]*)")


def _allowed_in_python(text: str) -> bool:
    """The rule of ops/queries.py: one-line SET/SHOW/RESET, cursor control, and one-line SELECTs of catalogs."""
    text = text.strip()
    if "\n" in text:
        return False
    if not text.split(maxsplit=1)[1:]:  # one word: a command tag compared with ("UPDATE"), not a statement
        return True
    keyword = SQL_START.match(text).group(1)  # type: ignore[union-attr]
    if keyword in ("SET", "SHOW", "RESET", "DECLARE", "FETCH", "CLOSE"):
        return True
    return keyword == "SELECT" and all(
        r.startswith(("pg_", "information_schema", "unnest")) for r in RELATION.findall(text)
    )


def test_sql_of_core_modules_lives_in_sql_files():
    for name, path in MODULES.items():
        if name.startswith("ops.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            elif isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            else:
                continue
            if SQL_START.match(text):
                assert _allowed_in_python(text), f"{name}:{node.lineno}: SQL belongs in sql/queries: {text[:80]!r}"


def test_sql_rule_catches_what_it_should():
    assert not _allowed_in_python("SELECT id FROM pictures WHERE status = 'ready'")
    assert not _allowed_in_python("SELECT a\nFROM pg_class")
    assert not _allowed_in_python("DROP TABLE {}") and _allowed_in_python("TRUNCATE")
    assert _allowed_in_python("SELECT to_regclass(%s) IS NOT NULL") and _allowed_in_python("SET LOCAL jit = off")


def test_one_error_mapping_and_one_place_for_settings():
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and isinstance(node.type, ast.Name) and node.type.id in (
                "Exception", "BaseException"
            ):  # fmt: skip
                assert name == "ops.cli", f"{name}:{node.lineno}: except {node.type.id} outside the error mapping"
            if isinstance(node, ast.Attribute) and node.attr in ("get", "getenv") and ast.unparse(node.value) in (
                "os.environ", "os"
            ):  # fmt: skip
                assert name == "ops.settings", f"{name}:{node.lineno}: settings are read in ops.settings only"
