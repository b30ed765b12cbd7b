"""The scratch database a plan replays migrations on: this database's schema, no rows.

Created on the same server as ``ops_plan_scratch_<database oid>_<random>`` from a schema-only
``pg_dump`` (restored with ``psql``), and dropped at the end, also after Ctrl-C or SIGTERM. While it
exists, the session that created it holds an advisory lock named after it: a scratch database whose lock
nobody holds was left by a killed plan, and the next plan of the same database drops it (also a plan with
nothing to trace). With ``--scratch-url`` the operator names an empty database instead (no CREATEDB needed;
the extensions production uses, such as PostGIS, created in it beforehand by a DBA are kept): ops marks it
(a schema ``ops_plan_in_use`` recording the extensions it found), fills it, and empties it again, and never
drops it; a marked database whose plan is gone (killed) is emptied by the next plan. A system database
(``postgres``, a template) or production itself is refused.

The replay runs as a role of its own where it can (``ops.plan.confine``).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

from ops import db, queries
from ops.config import mask_url
from ops.errors import CheckUnavailable, PlanError
from ops.plan import confine

PREFIX = "ops_plan_scratch_"
# pg_advisory_lock(key, hashtext(name)) of a scratch database's creator: b"opsp" as an int4.
LOCK_KEY = int.from_bytes(b"opsp", "big")
DUMP_TIMEOUT_S = 600
MARKER = "ops_plan_in_use"  # the schema marking an operator's --scratch-url while a plan fills it
SYSTEM_DATABASES = ("postgres", "template0", "template1")


@dataclass(frozen=True)
class Scratch:
    url: str
    name: str
    created: bool  # False: the operator's --scratch-url, emptied at the end, never dropped
    unconfined: str | None = None  # why the replay runs as the plan's own role, not one of its own
    observer_url: str | None = None  # the sessions that only watch the replay (as the plan's role); None: url


def _version_of(tool: str) -> int:
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    match = re.search(r"\(PostgreSQL\)\s*(\d+)", out)
    return int(match.group(1)) if match else 0


def client_tool(name: str, server_major: int) -> str:
    """``pg_dump`` or ``psql`` of this server's major version or newer (PATH first, then Debian's installs)."""
    candidates = [shutil.which(name)]
    candidates += [str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)]
    seen = []
    for tool in candidates:
        if not tool or tool in seen:
            continue
        seen.append(tool)
        if _version_of(tool) >= server_major:
            return tool
    raise PlanError(
        f"{name} {server_major} or newer is needed to copy the schema (found: {', '.join(seen) or 'none'}); "
        f"install the PostgreSQL client tools (apt-get install postgresql-client-{server_major})"
    )


def _libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """A connection string without its password, and the environment that carries the password: nothing
    secret on a command line (``ps`` shows command lines to every user)."""
    params = conninfo.conninfo_to_dict(url)
    password = params.pop("password", None)
    env = {"PGPASSWORD": str(password)} if password else {}
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items()}), env


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGSERVICE", "PGOPTIONS")}
    return {**env, **extra}


def copy_schema(source_url: str, target_url: str, server_major: int, lock_wait_s: float) -> None:
    """This database's schema (no rows, no owners, no grants) into the scratch database."""
    pg_dump, psql = client_tool("pg_dump", server_major), client_tool("psql", server_major)
    source, source_env = _libpq_target(source_url)
    target, target_env = _libpq_target(target_url)
    dump_cmd = [pg_dump, "--schema-only", "--no-owner", "--no-privileges", "--no-comments", "--no-publications",
                "--no-subscriptions", f"--lock-wait-timeout={round(lock_wait_s * 1000)}", "-d", source]  # fmt: skip
    restore_cmd = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target]
    with subprocess.Popen(dump_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(source_env)) as dump:
        restore = subprocess.run(
            restore_cmd, stdin=dump.stdout, capture_output=True, env=_env(target_env), timeout=DUMP_TIMEOUT_S
        )
        if dump.stdout:
            dump.stdout.close()
        dump_err = dump.stderr.read() if dump.stderr else b""
        dump.wait(timeout=DUMP_TIMEOUT_S)
    if restore.returncode != 0:  # first: a restore that stops ends the dump with a broken pipe
        raise PlanError(
            f"restoring the schema into the scratch database failed: {_first_error(restore.stderr)} (the scratch "
            "database needs the extensions production uses: a role that may create them, or a --scratch-url "
            "database in which a DBA created them)"
        )
    if dump.returncode != 0:
        raise CheckUnavailable(f"pg_dump --schema-only failed: {_first_error(dump_err)}")  # production unread
    _populate_views(source_url, target_url)


def _populate_views(source_url: str, target_url: str) -> None:
    """The materialized views production has populated, populated in the copy too: a schema-only dump leaves
    them unpopulated (their data is a REFRESH in the dump's data section), and a migration reading one (such
    as Panoramax 2.15's, from a 2.13 or 2.14 database) would fail on the copy where it succeeds on production.
    With no rows, each refresh is instant; a view refreshed before one it reads from is tried again after it."""
    with db.connect(source_url, autocommit=True) as source:
        pending = [tuple(r) for r in source.execute(queries.statement("plan", "populated_views"))]
    with db.connect(target_url, autocommit=True) as target:
        while pending:
            failed = []
            for schema, name in pending:
                try:
                    target.execute(queries.identified("plan", "refresh_view", schema=schema, view=name))
                except psycopg.Error:
                    failed.append((schema, name))
            if len(failed) == len(pending):  # left unpopulated: the replay says what a migration made of it
                return
            pending = failed


def _first_error(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "error" in line] or lines
    return errors[0] if errors else "no message"


def _with_database(url: str, name: str) -> str:
    params = conninfo.conninfo_to_dict(url)
    params["dbname"] = name
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})


def drop_leftovers(admin: psycopg.Connection) -> list[str]:
    """Drop the scratch databases of this database that killed plans left (their creator's lock is free), and
    the roles their replays ran as."""
    databases = [r[0] for r in admin.execute(queries.statement("plan", "leftovers")).fetchall()]
    roles = [r[0] for r in admin.execute(queries.statement("plan", "leftover_roles")).fetchall()]
    dropped = []
    for name in sorted({*databases, *roles}):
        if not db.scalar(admin, "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_KEY, name)):
            continue  # a running plan's
        try:
            if name in databases:
                admin.execute(queries.identified("plan", "drop_database", database=name))
                dropped.append(name)
            if name in roles:
                confine.drop_role(admin, name)
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_KEY, name))
    return dropped


def _check_identity(scratch_conn: psycopg.Connection, admin: psycopg.Connection, url: str) -> None:
    """Refuse a system database, a template, or production itself as --scratch-url."""
    name, template, started, oid = db.one(scratch_conn, queries.statement("plan", "scratch_identity"))
    if name in SYSTEM_DATABASES or template:
        raise PlanError(
            f"--scratch-url {mask_url(url)} is the {'template' if template else 'system'} database {name}: ops "
            "fills and empties the scratch database, so it takes an empty database made for it (CREATE DATABASE "
            "ops_scratch, by a DBA)"
        )
    _name, _template, prod_started, prod_oid = db.one(admin, queries.statement("plan", "scratch_identity"))
    if (started, oid) == (prod_started, prod_oid):
        raise PlanError(f"--scratch-url {mask_url(url)} is the database being planned: give an empty one")


def _drop(statement: str, **parts: sql.Composable) -> sql.Composed:
    """A DROP of plan.sql whose kind and names come from the catalogs (never from input)."""
    return sql.SQL(queries.statement("plan", statement)).format(**parts)


def _require_empty(conn: psycopg.Connection, url: str) -> None:
    count = db.scalar(conn, queries.statement("plan", "user_objects"))
    if count:
        raise PlanError(
            f"--scratch-url {mask_url(url)} is not empty ({count} tables, functions or types besides its "
            "extensions'): ops fills the scratch database and empties it at the end, so it takes an empty one only"
        )


def _drop_loose(conn: psycopg.Connection, schemas: list[str]) -> None:
    """Drop what no extension owns from the schemas kept."""
    params = {"schemas": schemas}
    for schema, name in conn.execute(queries.statement("plan", "loose_relations"), params).fetchall():
        qualified = sql.Identifier(schema, name).as_string(conn)
        row = conn.execute(queries.statement("plan", "drop_relation"), {"qualified": qualified}).fetchone()
        if row:  # else gone already, with a table it belonged to
            conn.execute(_drop("drop_kind", kind=sql.SQL(row[0]), name=sql.Identifier(schema, name)))
    for (routine,) in conn.execute(queries.statement("plan", "loose_routines"), params).fetchall():
        conn.execute(_drop("drop_routine", routine=sql.SQL(routine)))  # quoted by PostgreSQL
    for schema, name, domain in conn.execute(queries.statement("plan", "loose_types"), params).fetchall():
        conn.execute(
            _drop("drop_type", kind=sql.SQL("DOMAIN" if domain else "TYPE"), name=sql.Identifier(schema, name))
        )


def _empty(conn: psycopg.Connection, kept: dict[str, str]) -> None:
    """Empty an operator's scratch database, keeping the extensions it held before ops filled it."""
    for extension in confine.extensions(conn):
        if extension not in kept and extension != "plpgsql":
            conn.execute(queries.identified("plan", "drop_extension", extension=extension))
    schemas = sorted({"public", *kept.values()} - {"pg_catalog", "information_schema"})
    for (schema,) in conn.execute(queries.statement("plan", "user_schemas")).fetchall():
        if schema not in schemas:
            conn.execute(queries.identified("plan", "drop_schema", schema=schema))
    _drop_loose(conn, schemas)
    conn.execute(queries.statement("plan", "recreate_public"))


def _marked_extensions(conn: psycopg.Connection) -> dict[str, str] | None:
    """The extensions a killed plan found in this scratch database (its mark), or None: not marked."""
    comment = db.scalar(conn, "SELECT obj_description(to_regnamespace(%s), 'pg_namespace')", (MARKER,))
    exists = db.scalar(conn, "SELECT to_regnamespace(%s) IS NOT NULL", (MARKER,))
    if not exists:
        return None
    try:
        found = json.loads(comment or "{}")
    except ValueError:
        found = {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


@contextlib.contextmanager
def _operator_scratch(
    admin: psycopg.Connection, url: str, scratch_url: str, major: int, connect_timeout_s: float, lock_wait_s: float
) -> Iterator[Scratch]:
    with db.connect(scratch_url, autocommit=True, connect_timeout_s=connect_timeout_s) as conn:
        _check_identity(conn, admin, scratch_url)
        name = str(db.scalar(conn, "SELECT current_database()"))
        if not db.scalar(conn, "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_KEY, name)):
            raise PlanError(f"--scratch-url {mask_url(scratch_url)} is in use by another ops db plan")
        try:
            kept = _marked_extensions(conn)
            if kept is not None:  # left by a killed plan: emptied now
                _empty(conn, kept)
            kept = confine.extensions(conn)
            _require_empty(conn, scratch_url)
            conn.execute(queries.identified("plan", "create_schema", schema=MARKER))
            conn.execute(sql.SQL(queries.statement("plan", "mark_scratch")).format(
                schema=sql.Identifier(MARKER), extensions=json.dumps(kept)))  # fmt: skip
            try:
                copy_schema(url, scratch_url, major, lock_wait_s)
                yield Scratch(scratch_url, name, False, "--scratch-url: the replay runs as that URL's role")
            finally:
                _empty(conn, kept)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_KEY, name))


def drop_leftovers_of(url: str, connect_timeout_s: float) -> list[str]:
    """The leftovers of killed plans of this database, dropped (by a plan with nothing to trace)."""
    with db.connect(url, autocommit=True, connect_timeout_s=connect_timeout_s) as admin:
        return drop_leftovers(admin)


@contextlib.contextmanager
def scratch_database(
    url: str, scratch_url: str | None, *, connect_timeout_s: float, lock_wait_s: float
) -> Iterator[tuple[Scratch, list[str]]]:
    """A scratch database holding this database's schema, and the leftovers dropped on the way in; gone
    (or emptied) on the way out, whatever happens in between."""
    with db.connect(url, autocommit=True, connect_timeout_s=connect_timeout_s) as admin:
        major = db.server_major_version(admin)
        if scratch_url:
            with _operator_scratch(admin, url, scratch_url, major, connect_timeout_s, lock_wait_s) as box:
                yield box, []
            return
        leftovers = drop_leftovers(admin)
        oid = db.scalar(admin, "SELECT oid FROM pg_database WHERE datname = current_database()")
        name = f"{PREFIX}{oid}_{secrets.token_hex(4)}"
        admin.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_KEY, name))
        try:
            try:
                admin.execute(queries.identified("plan", "create_database", database=name))
            except psycopg.errors.InsufficientPrivilege:
                raise PlanError(
                    "this role may not create databases (CREATEDB): give --scratch-url an empty database "
                    "ops may fill and empty"
                ) from None
            try:
                scratch_url_created = _with_database(url, name)
                unconfined = confine.confine(admin, name, scratch_url_created)
                replay_url = scratch_url_created if unconfined else confine.as_role(scratch_url_created, name)
                copy_schema(url, replay_url, major, lock_wait_s)
                yield Scratch(replay_url, name, True, unconfined, scratch_url_created), leftovers
            finally:
                admin.execute(queries.identified("plan", "drop_database", database=name))
                confine.drop_role(admin, name)
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_KEY, name))
