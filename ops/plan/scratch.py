"""The scratch database a plan replays migrations on: this database's schema, no rows.

Created on the same server as ``ops_plan_scratch_<database oid>_<random>`` from a schema-only
``pg_dump`` (restored with ``psql``), and dropped at the end, also after Ctrl-C or SIGTERM. While it
exists, the session that created it holds an advisory lock named after it: a scratch database whose lock
nobody holds was left by a killed plan, and the next plan of the same database drops it. With
``--scratch-url`` the operator names an empty database instead (no CREATEDB needed): ops fills it and
empties it again, and never drops it.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import conninfo

from ops import db, queries
from ops.config import mask_url
from ops.errors import PlanError

PREFIX = "ops_plan_scratch_"
# pg_advisory_lock(key, hashtext(name)) of a scratch database's creator: b"opsp" as an int4.
LOCK_KEY = int.from_bytes(b"opsp", "big")
DUMP_TIMEOUT_S = 600


@dataclass(frozen=True)
class Scratch:
    url: str
    name: str
    created: bool  # False: the operator's --scratch-url, emptied at the end, never dropped


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
    dump_cmd = [pg_dump, "--schema-only", "--no-owner", "--no-privileges", "--no-publications",
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
    if dump.returncode != 0:
        raise PlanError(f"pg_dump --schema-only failed: {_first_error(dump_err)}")
    if restore.returncode != 0:
        raise PlanError(
            f"restoring the schema into the scratch database failed: {_first_error(restore.stderr)} "
            "(the scratch database needs the same extensions: a role that may create them, or --scratch-url)"
        )


def _first_error(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "error" in line] or lines
    return errors[0] if errors else "no message"


def _with_database(url: str, name: str) -> str:
    params = conninfo.conninfo_to_dict(url)
    params["dbname"] = name
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})


def drop_leftovers(admin: psycopg.Connection) -> list[str]:
    """Drop the scratch databases of this database that killed plans left (their creator's lock is free)."""
    dropped = []
    for (name,) in admin.execute(queries.statement("plan", "leftovers")).fetchall():
        if not db.scalar(admin, "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_KEY, name)):
            continue  # a running plan's
        try:
            admin.execute(queries.identified("plan", "drop_database", database=name))
            dropped.append(name)
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_KEY, name))
    return dropped


def _require_empty(url: str, connect_timeout_s: float) -> None:
    with db.connect(url, autocommit=True, connect_timeout_s=connect_timeout_s) as conn:
        count = db.scalar(conn, queries.statement("plan", "user_objects"))
    if count:
        raise PlanError(
            f"--scratch-url {mask_url(url)} is not empty ({count} tables, functions or types): ops fills the "
            "scratch database and empties it at the end, so it takes an empty one only"
        )


def _empty(url: str, connect_timeout_s: float) -> None:
    with db.connect(url, autocommit=True, connect_timeout_s=connect_timeout_s) as conn:
        for (schema,) in conn.execute(queries.statement("plan", "user_schemas")).fetchall():
            conn.execute(queries.identified("plan", "drop_schema", schema=schema))
        conn.execute(queries.statement("plan", "recreate_public"))


@contextlib.contextmanager
def scratch_database(
    url: str, scratch_url: str | None, *, connect_timeout_s: float, lock_wait_s: float
) -> Iterator[tuple[Scratch, list[str]]]:
    """A scratch database holding this database's schema, and the leftovers dropped on the way in; gone
    (or emptied) on the way out, whatever happens in between."""
    with db.connect(url, autocommit=True, connect_timeout_s=connect_timeout_s) as admin:
        major = db.server_major_version(admin)
        if scratch_url:
            _require_empty(scratch_url, connect_timeout_s)
            try:
                copy_schema(url, scratch_url, major, lock_wait_s)
                yield Scratch(scratch_url, str(conninfo.conninfo_to_dict(scratch_url).get("dbname") or ""), False), []
            finally:
                _empty(scratch_url, connect_timeout_s)
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
                copy_schema(url, scratch_url_created, major, lock_wait_s)
                yield Scratch(scratch_url_created, name, True), leftovers
            finally:
                admin.execute(queries.identified("plan", "drop_database", database=name))
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_KEY, name))
