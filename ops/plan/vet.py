"""Which statements of a migration ``ops db plan`` may replay on its scratch database.

The plan replays a release's migrations on a scratch database of production's own server, and sends the
DML among them to production for ``EXPLAIN``. A migration's text is not ops's: it may be careless or
hostile. So every statement is first read by PostgreSQL's own parser (``pglast``, libpg_query) and replayed
only when:

- PostgreSQL reads exactly one statement where yoyo's split sends one (``'x\\' <> ''`` is one statement to
  sqlparse and six to a server with ``standard_conforming_strings``: yoyo would send all six);
- it does not control the transaction (``COMMIT``, ``BEGIN``: the plan keeps each migration's transaction);
- it does not act beyond its own database: databases, roles, tablespaces, ``ALTER SYSTEM``, subscriptions,
  ``COPY`` to or from a server file or program, functions reaching other databases, server files or other
  sessions (``dblink``, ``lo_import``, ``pg_read_file``, ``pg_terminate_backend``…), also inside a ``DO``
  block's or a function's body.

A refused statement is never run: its migration is listed as not traced, with the reason, and a warning.
What the parser cannot see (a name built at run time in dynamic SQL) is caught while the statement runs:
the replay reads its transaction's writes to the cluster's shared catalogs (roles, databases, tablespaces,
their settings and comments) before each commit and rolls back when there are any (``shared_writes``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pglast
from pglast import ast
from pglast.enums import ObjectType

BEYOND = "acts beyond the scratch database"
# Statements on the cluster or on other databases.
CLUSTER_NODES = {
    "CreatedbStmt": "creates a database", "DropdbStmt": "drops a database", "AlterDatabaseStmt": "alters a database",
    "AlterDatabaseSetStmt": "changes a database's settings",
    "AlterDatabaseRefreshCollStmt": "alters a database", "CreateRoleStmt": "creates a role",
    "AlterRoleStmt": "alters a role", "AlterRoleSetStmt": "changes a role's settings", "DropRoleStmt": "drops a role",
    "GrantRoleStmt": "grants a role", "ReassignOwnedStmt": "reassigns a role's objects",
    "DropOwnedStmt": "drops a role's objects", "CreateTableSpaceStmt": "creates a tablespace",
    "DropTableSpaceStmt": "drops a tablespace", "AlterTableSpaceOptionsStmt": "alters a tablespace",
    "AlterSystemStmt": "changes the server's configuration (ALTER SYSTEM)",
    "CreateSubscriptionStmt": "creates a subscription", "AlterSubscriptionStmt": "alters a subscription",
    "DropSubscriptionStmt": "drops a subscription", "LoadStmt": "loads a shared library",
    "CheckPointStmt": "forces a checkpoint of the server",
}  # fmt: skip
SHARED_OBJECTS = {ObjectType.OBJECT_DATABASE, ObjectType.OBJECT_ROLE, ObjectType.OBJECT_TABLESPACE,
                  ObjectType.OBJECT_SUBSCRIPTION}  # fmt: skip
# Functions that reach other databases, the server's files or other sessions.
FUNCTION_NAMES = (
    r"dblink\w*|lo_import|lo_export|lo_from_bytea|pg_read_file|pg_read_binary_file|pg_stat_file|pg_ls_\w+|"
    r"pg_file_\w+|pg_logdir_ls|pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|"
    r"pg_promote|pg_switch_wal|pg_create_\w*replication_slot|pg_drop_replication_slot|pg_replication_origin_\w+"
)
FUNCTIONS = re.compile(rf"({FUNCTION_NAMES})", re.IGNORECASE)
# In a body (a DO block, a function): the same functions, and the statements above written as text.
BODY_WORDS = re.compile(
    rf"\b({FUNCTION_NAMES}|program|(create|alter|drop)\s+(role|user|group|database|tablespace|subscription)"
    r"|alter\s+system|reassign\s+owned|drop\s+owned|copy\b[^;]*\b(to|from)\s+'"
    r"|\bset\s+(session\s+|local\s+)?role\b|session\s+authorization|reset\s+role|set_config\s*\(\s*'role')",
    re.IGNORECASE,
)
ROLE_SETTINGS = {"role", "session_authorization"}  # SET ROLE, RESET ROLE, SET SESSION AUTHORIZATION
ROLE_CHANGE = f"changes the session's role, which the replay's confinement rests on: it {BEYOND}"
# Statements that refuse a transaction block and may still be replayed outside one (they cannot reach beyond
# the database): the plan's replay runs them as production would.
BLOCK_KINDS = {0, 1, 2}  # TransactionStmtKind: BEGIN, START, COMMIT
OUTSIDE_TRANSACTION_OK = {"IndexStmt", "ReindexStmt", "VacuumStmt", "DropStmt", "AlterEnumStmt", "ClusterStmt"}


def _nodes(node: Any) -> Iterator[Any]:
    """Every node of a parse tree (pglast's nodes are typed loosely: ``Any``)."""
    if isinstance(node, ast.Node):
        yield node
        for name in getattr(node, "__slots__", ()):
            yield from _nodes(getattr(node, name, None))
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _nodes(item)


def _body_reason(body: str) -> str | None:
    found = BODY_WORDS.search(body)
    return f"its body names {' '.join(found.group(0).split())!r}, which {BEYOND}" if found else None


def _node_reason(node: Any) -> str | None:
    name = type(node).__name__
    if name in CLUSTER_NODES:
        return f"{CLUSTER_NODES[name]}: it {BEYOND}"
    if name == "VariableSetStmt" and (node.name or "").lower() in ROLE_SETTINGS:
        return ROLE_CHANGE
    if name == "TransactionStmt":
        return "controls the transaction (COMMIT, ROLLBACK, SAVEPOINT…), which the migration's runner does"
    if name == "CopyStmt" and (node.is_program or node.filename):
        return f"copies to or from {'a program' if node.is_program else 'a file'} of the server: it {BEYOND}"
    for field in ("objtype", "objectType", "renameType", "removeType", "kind"):
        value = getattr(node, field, None)
        if isinstance(value, ObjectType) and value in SHARED_OBJECTS:
            return f"acts on a {value.name.removeprefix('OBJECT_').lower()}: it {BEYOND}"
    if name == "FuncCall":
        called = ".".join(getattr(part, "sval", "") for part in node.funcname or ())
        if FUNCTIONS.fullmatch(called.split(".")[-1]):
            return f"calls {called}(), which {BEYOND}"
        first = getattr(getattr(node.args[0], "val", None), "sval", None) if node.args else None
        if called.split(".")[-1].lower() == "set_config" and str(first).lower() in ROLE_SETTINGS:
            return ROLE_CHANGE
    if name == "DoStmt":
        return _body_reason(" ".join(str(getattr(d.arg, "sval", "")) for d in node.args or ()))
    if name == "CreateFunctionStmt":
        bodies = [str(getattr(d.arg[0] if isinstance(d.arg, tuple) else d.arg, "sval", ""))
                  for d in node.options or () if d.defname == "as" and d.arg is not None]  # fmt: skip
        return _body_reason(" ".join(bodies)) if bodies else None
    return None


def _parse(text: str) -> list[ast.RawStmt] | None:
    try:
        return list(pglast.parse_sql(text))
    except pglast.parser.ParseError:
        return None


def block_boundary(text: str) -> bool:
    """Whether ``text`` is a bare ``BEGIN``/``START TRANSACTION``/``COMMIT``, which a migration marked
    ``-- transactional: false`` may hold around some of its statements (Panoramax's do): the replay traces
    each statement in a transaction of its own, so it runs none of them."""
    statements = _parse(text)
    if statements is None or len(statements) != 1:
        return False
    stmt: Any = statements[0].stmt
    return type(stmt).__name__ == "TransactionStmt" and int(stmt.kind) in BLOCK_KINDS and not stmt.options


def refusal(text: str, transactional: bool = True) -> str | None:
    """Why ``text`` (one statement as yoyo splits a migration) must not be replayed, or None."""
    if not transactional and block_boundary(text):
        return None
    try:
        statements = pglast.parse_sql(text)
    except pglast.parser.ParseError as exc:
        return f"PostgreSQL's parser cannot read it ({exc}), so ops cannot tell what it does"
    if len(statements) > 1:
        return (
            f"PostgreSQL reads {len(statements)} statements where the migration's split sends one (a quote or "
            "comment the two read differently): the server would run all of them"
        )
    for raw in statements:
        for node in _nodes(raw.stmt):
            reason = _node_reason(node)
            if reason:
                return reason
    return None


def _single_of(text: str, kinds: set[str]) -> bool:
    statements = _parse(text)
    return statements is not None and len(statements) == 1 and type(statements[0].stmt).__name__ in kinds


def runs_outside_transaction(text: str) -> bool:
    """Whether a statement that refuses a transaction block is one the replay may run outside one."""
    return _single_of(text, OUTSIDE_TRANSACTION_OK)


def single_dml(text: str) -> bool:
    """Whether ``text`` is exactly one UPDATE, DELETE, INSERT or MERGE (what the plan may EXPLAIN)."""
    return _single_of(text, {"UpdateStmt", "DeleteStmt", "InsertStmt", "MergeStmt"})


def concurrent_index(text: str) -> tuple[str | None, str] | None:
    """The (schema, name) of the index that ``text`` builds when it is exactly one named ``CREATE INDEX
    CONCURRENTLY`` (without IF NOT EXISTS), else None: what a migration without a transaction leaves behind
    when it is killed during or just after the build."""
    statements = _parse(text)
    if statements is None or len(statements) != 1:
        return None
    stmt: Any = statements[0].stmt
    if type(stmt).__name__ != "IndexStmt" or not stmt.concurrent or not stmt.idxname or stmt.if_not_exists:
        return None
    return stmt.relation.schemaname, stmt.idxname
