"""Real services for the tests: a PostgreSQL + PostGIS cluster (ops.localdb) and an S3 server (moto).

The cluster is started once per session in a folder the ``postgres`` OS user can reach; a template database
is migrated once, and each test gets a fresh copy (``CREATE DATABASE ... TEMPLATE``) in about 0.1 s.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import click
import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from ops.cli import cli
from ops.localdb import LocalCluster
from ops.schema import runner
from tests import spec_sql
from tests.storage_helpers import Store, local_store, s3_store

ENV_VARS = (
    "DB_URL", "SECRET_KEY", "FLASK_SECRET_KEY", "FS_URL", "FS_PERMANENT_URL", "FS_DERIVATES_URL", "FS_TMP_URL",
    "OPS_MIGRATIONS_DIR", "PICTURE_PROCESS_REFRESH_CRON", "PICTURE_PROCESS_NB_RETRIES", "OPS_CONNECT_TIMEOUT",
    "OPS_READ_LOCK_TIMEOUT", "OPS_READ_STATEMENT_TIMEOUT",
)  # fmt: skip
REPO = Path(__file__).resolve().parent.parent
TEMPLATE = "ops_template"
_counter = itertools.count()
# `make test` runs every scenario with fewer repetitions (kill points, races) than `make reliability-report`,
# which sets OPS_TEST_FULL=1 and publishes the full counts.
FULL = os.environ.get("OPS_TEST_FULL") == "1"


# `make check` (the inner loop) runs every test but these and those marked slow; `make test` runs them all.
SLOW = ("tests/reliability/", "tests/test_packaging.py", "tests/test_compatibility.py", "tests/tools/test_bench.py",
        "tests/test_plan.py", "tests/test_panoramax_upgrade.py", "tests/test_panoramax_api.py")  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)


def repetitions(full: int, quick: int) -> int:
    """How many times a repeated scenario runs: ``full`` for the reliability report, ``quick`` in ``make test``."""
    return full if FULL else quick


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the developer's shell or a .env file."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    base = Path(tempfile.mkdtemp(prefix="ops-tests-", dir="/tmp"))
    base.chmod(0o755)  # the postgres OS user must reach it (pytest's tmp_path is 0700)
    # pg_stat_statements (every statement, nested ones too) lets tests read back what the server did, such as
    # whether a statement was JIT-compiled (tests/test_jit.py)
    local = LocalCluster(base / "pg", fast=True, extra_settings={
        "shared_preload_libraries": "'pg_stat_statements'", "pg_stat_statements.track": "all"})  # fmt: skip
    local.start()
    try:
        yield local
    finally:
        local.destroy()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def admin_url(cluster: LocalCluster) -> str:
    return cluster.url("postgres")


def _create_database(admin_url: str, name: str, template: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_db(cluster: LocalCluster, admin_url: str) -> str:
    """A database migrated with the packaged migrations, copied by every test that needs the schema."""
    _create_database(admin_url, TEMPLATE, "template1")
    runner.upgrade(cluster.url(TEMPLATE))
    return TEMPLATE


@pytest.fixture
def new_database(cluster: LocalCluster, admin_url: str) -> Iterator[Callable[[str], str]]:
    """Factory: a fresh database copied from a template; returns its URL. Dropped after the test."""
    created: list[str] = []

    def make(template: str = "template1") -> str:
        name = f"t{os.getpid()}_{next(_counter)}"
        _create_database(admin_url, name, template)
        created.append(name)
        return cluster.url(name)

    yield make
    for name in created:
        _drop_database(admin_url, name)


@pytest.fixture
def ops_db_url(new_database: Callable[[str], str], template_db: str) -> str:
    """A fresh database built by ``ops db upgrade``."""
    return new_database(template_db)


@pytest.fixture(params=["ops", "panoramax"])
def db_url(request: pytest.FixtureRequest, new_database: Callable[[str], str]) -> str:
    """A fresh database of each kind (each test using it runs twice): built by ``ops db upgrade``, and
    built by Panoramax's own migrations."""
    template = request.getfixturevalue("template_db" if request.param == "ops" else "panoramax_template")
    return new_database(template)


@pytest.fixture
def empty_db_url(new_database: Callable[[str], str]) -> str:
    """A fresh database with nothing of ops in it."""
    return new_database("template1")


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@pytest.fixture
def ops_conn(ops_db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(ops_db_url, autocommit=True) as c:
        yield c


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def ops() -> Callable[..., Run]:
    """Run the ops CLI in-process through Click's runner, as a user would: args, env, input."""

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Run:
        result = CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False, prog_name="ops")
        return Run(result.exit_code, result.stdout, result.stderr)

    return run


def ops_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an ops process: this one's, without the settings a test did not give."""
    return {k: v for k, v in os.environ.items() if k not in ENV_VARS} | (extra or {})


def start_ops(*args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = (),
              **kwargs: Any) -> subprocess.Popen[str]:  # fmt: skip
    """``ops`` as a separate process (concurrency, kill -9, time bounds), its output piped. ``prefix``: a
    command to run it under (setpriv)."""
    return subprocess.Popen([*prefix, sys.executable, "-m", "ops", *args], env=ops_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)  # fmt: skip


def run_ops(*args: str, env: dict[str, str] | None = None, timeout: float = 120, prefix: tuple[str, ...] = (),
            **kwargs: Any) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``ops`` as a separate process, run to its end."""
    return subprocess.run([*prefix, sys.executable, "-m", "ops", *args], env=ops_env(env), capture_output=True,
                          text=True, timeout=timeout, **kwargs)  # fmt: skip


def with_pending(folder: Path, name: str, text: str, rollback: str) -> Path:
    """``folder``: ops's own migrations and one more after them, pending: ``name``.sql (``text``, after the
    last one) and its rollback."""
    from ops.schema.files import default_migrations_dir

    shutil.copytree(default_migrations_dir(), folder)
    last = sorted(p.stem for p in default_migrations_dir().glob("*.sql") if not p.stem.endswith(".rollback"))[-1]
    return write_migrations(folder, {f"{name}.sql": f"-- depends: {last}\n{text}", f"{name}.rollback.sql": rollback})


def write_migrations(folder: Path, files: dict[str, str]) -> Path:
    """Write migration files inline (yoyo's test style): {"0001_a.sql": "...", "0001_a.rollback.sql": "..."}."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, spoken to over real HTTP."""
    from moto.server import ThreadedMotoServer

    from ops.localdb import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean S3 server for one test (state reset after it); credentials in the environment."""
    import urllib.request

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    yield s3_endpoint
    urllib.request.urlopen(urllib.request.Request(f"{s3_endpoint}/moto-api/reset", method="POST")).read()


@pytest.fixture
def instance(conn, store):
    """Two sequences: seq1 = a, b, shared; seq2 = c, shared. Every picture has all its files."""
    from tests.factories import make_account, make_sequence, prepared, walk

    account = make_account(conn)
    a, b, shared, c = walk(2.0, 48.0, 4)
    seq1 = make_sequence(conn, account, [a, b, shared])
    seq2 = make_sequence(conn, account, [c, shared])
    files = {p.id: store.add_picture(p.id) for p in (a, b, shared, c)}
    prepared(conn)
    return {"seq1": seq1, "seq2": seq2, "a": a.id, "b": b.id, "shared": shared.id, "c": c.id, "files": files}


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A picture storage, once on a local folder and once on moto's S3 (each test using it runs twice)."""
    if request.param == "local":
        return local_store(tmp_path)
    return s3_store(request.getfixturevalue("s3"))


PANORAMAX_TEMPLATE = "panoramax_template"


@pytest.fixture(scope="session")
def panoramax_template(cluster: LocalCluster, admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database built by Panoramax 2.15.1's own migrations (the geovisio wheel), copied by the tests."""
    from scripts import panoramax

    _create_database(admin_url, PANORAMAX_TEMPLATE, "template1")
    applied = panoramax.build(cluster.url(PANORAMAX_TEMPLATE), panoramax.migrations_dir(tmp_path_factory.mktemp("pnx")))
    assert applied >= 100
    return PANORAMAX_TEMPLATE


@pytest.fixture
def pnx_url(new_database: Callable[[str], str], panoramax_template: str) -> str:
    """A fresh database built by Panoramax's migrations."""
    return new_database(panoramax_template)


def database_dump(url: str) -> str:
    """The whole database, schema and data, as pg_dump prints it: two equal dumps mean nothing changed."""
    from ops.localdb import find_bindir

    proc = subprocess.run([str(find_bindir() / "pg_dump"), "--no-owner", "--no-privileges", url],
                          capture_output=True, text=True, check=True)  # fmt: skip
    # recent pg_dump brackets its output with \restrict <random key>: not the database's content
    return "\n".join(line for line in proc.stdout.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def file_tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every entry under ``root`` (folders too, links not followed): path -> (kind, size)."""
    found: dict[str, tuple[str, int]] = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        kind = "link" if path.is_symlink() else "folder" if path.is_dir() else "file"
        found[path.relative_to(root).as_posix()] = (kind, 0 if kind == "folder" else st.st_size)
    return found


def every_command(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command of the CLI (groups included) with its path of names."""
    ctx = click.Context(group)
    found = [(path, group)] if not path else []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += [f for f in every_command(command, (*path, name)) if f[0] != (*path, name)]
    return found


def make_role(url: str, grants: str) -> str:
    """A login role of the test cluster with these grants on the database of ``url`` ({role}, {db})."""
    name = f"mon_{uuid4().hex[:8]}"
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        for statement in grants.strip().split(";"):
            if statement.strip():
                c.execute(sql.SQL(statement.strip()).format(role=sql.Identifier(name), db=sql.Identifier(database)))
    return name


# The monitoring role of docs/commands.md (section "Monitoring role"), word for word but the names.
MONITORING_GRANTS = """
GRANT CONNECT ON DATABASE {db} TO {role};
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};
GRANT pg_read_all_stats TO {role};
"""


# Under pytest-xdist (`make test`), each worker hands its reliability scenarios to the controller, which writes
# the one record (tests/reliability/conftest.py writes it itself in a run without workers).
_scenarios_of_workers: list[dict[str, Any]] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    _scenarios_of_workers.extend(getattr(node, "workeroutput", {}).get("scenarios", []))
    spec_sql.merge(getattr(node, "workeroutput", {}).get("spec_sql", {}))


if spec_sql.ENABLED:
    spec_sql.start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _scenarios_of_workers:
        from tests.reliability.conftest import write_record

        write_record(_scenarios_of_workers)
    if not spec_sql.ENABLED or not spec_sql.whole_suite(session.config):
        return
    if hasattr(session.config, "workerinput"):  # a worker: its record goes to the controller
        session.config.workeroutput["spec_sql"] = spec_sql.as_data()  # type: ignore[attr-defined]
        return
    spec_sql.write(REPO / ".ops" / "spec-sql.json")
    found = spec_sql.problems()
    if found and exitstatus == 0:
        print("\nSpec.sql differs from what the commands ran (tests/spec_sql.py):\n  " + "\n  ".join(found))
        session.exitstatus = 1
