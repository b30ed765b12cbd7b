"""Helpers of the CLI layer: settings, connections with the schema guard, id arguments, confirmation,
progress and output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from ops.settings import Settings

if TYPE_CHECKING:
    import psycopg

    from ops.jit import JitReport
    from ops.storage import Storage


def settings(ctx: click.Context) -> Settings:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()


def _command_path(ctx: click.Context, command: click.Command | None) -> str:
    """The path of ``command`` as typed (``"sequences reorder"``), the command of ``ctx`` when None."""
    if command is None or command is ctx.command:
        return " ".join(ctx.command_path.split()[1:])  # without the program's name
    from ops.cli import cli, registry

    return registry.path_of(cli, command)


@contextmanager
def database(
    ctx: click.Context, *, command: click.Command | None = None, check_schema: bool = True, read_only: bool = False
) -> Iterator[psycopg.Connection]:
    """An autocommit connection to DB_URL for ``command`` (the command of ``ctx`` when None), whose spec
    says what it needs: refuses to go on when the schema is not what the command needs (pending migrations,
    or on a Panoramax-managed database, a table, column, label or function it uses).

    ``read_only``: a session of read-only transactions whose lock waits and statements are bounded
    (OPS_READ_LOCK_TIMEOUT, OPS_READ_STATEMENT_TIMEOUT): a command that only looks never hangs behind a lock.
    A command whose spec does not write is read-only by force. A lock wait or statement past those limits,
    and a missing privilege, become one error line naming the cause (and who holds the locks)."""
    import time

    import psycopg

    from ops import db
    from ops.cli.registry import spec_of
    from ops.errors import WaitTimeout
    from ops.schema import status

    current = settings(ctx)
    spec = spec_of(command or ctx.command)
    name = f"ops {_command_path(ctx, command)}"
    read_only = read_only or not spec.writes  # a command that cannot write: read-only by force
    url = current.require_db_url()
    group = ctx.find_object(dict)  # `ops db --migrations-dir X …` (tests, development)
    directory = group.get("migrations_dir") if group else None
    server_settings = (
        db.read_only_settings(current.read_lock_timeout, current.read_statement_timeout)
        if read_only
        else db.write_settings(current.write_lock_timeout)
    )
    started = time.monotonic()
    with db.connect(
        url, autocommit=True, server_settings=server_settings, connect_timeout_s=current.connect_timeout,
        jit=current.jit,
    ) as conn:  # fmt: skip
        # a command that only looks ends within OPS_READ_DEADLINE as a whole (its connection included),
        # whatever the link: its query in flight is cancelled then and no other starts (statement_timeout
        # bounds a statement on the server, not a slow link)
        left = max(0.001, current.read_deadline - (time.monotonic() - started))
        watchdog = db.bound_by_deadline(conn, left) if read_only and current.read_deadline else None
        try:
            if check_schema:
                status.ensure_schema_current(conn, directory, spec.needs, what=name, views_in_sync=spec.views_in_sync)
            yield conn
        except psycopg.Error as e:
            if watchdog is not None and db.deadline_passed(conn):
                raise WaitTimeout(f"{name} did not finish within {current.read_deadline:g} s "
                                  "(OPS_READ_DEADLINE): its query was cancelled") from None  # fmt: skip
            explained = db.explain(conn, e, name)
            if explained is None:
                raise
            raise explained from None
        finally:
            if watchdog is not None:
                watchdog.cancel()


@contextmanager
def could_not_check() -> Iterator[None]:
    """For a command whose exit 1 means "found something": a database it cannot reach is exit 3
    (could not check), never 1 nor 2 (a usage error)."""
    from ops.errors import CheckUnavailable, DatabaseUnavailable

    try:
        yield
    except DatabaseUnavailable as e:
        raise CheckUnavailable(str(e)) from None


@contextmanager
def server_session(ctx: click.Context) -> Iterator[psycopg.Connection]:
    """A read-only session with the server's own JIT setting (as Panoramax's API has it), bounded like the
    sessions of read-only commands: where JIT's cost is measured."""
    from ops import db

    current = settings(ctx)
    with db.connect(current.require_db_url(), autocommit=True, jit=None, connect_timeout_s=current.connect_timeout,
                    server_settings=db.read_only_settings(current.read_lock_timeout,
                                                          current.read_statement_timeout)) as conn:  # fmt: skip
        yield conn


def jit_report(ctx: click.Context) -> JitReport | None:
    """What JIT costs the geometry function on this server, timed in a ``server_session``."""
    from ops import jit

    with server_session(ctx) as conn:
        return jit.measure(conn)


def open_storage(ctx: click.Context) -> Storage:
    """The storage of the settings, checked (root exists, bucket reachable)."""
    from ops import storage

    store = storage.from_settings(settings(ctx))
    store.check()
    return store


def confirm_or_refuse(question: str, refusal: str) -> None:
    """Ask ``question`` on a terminal (abort on no); refuse with a usage error (exit 2) elsewhere."""
    if not sys.stdin.isatty():
        raise click.UsageError(refusal)
    click.confirm(question, abort=True, err=True)


STDIN = "-"


class UuidType(click.ParamType):
    """An id argument: a UUID (exit 2 naming the bad value otherwise), or ``-``: one id per line on stdin
    (for more ids than a command line holds)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.name = f"{what.upper().replace(' ', '_')}_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> UUID | str:
        if isinstance(value, UUID):
            return value
        if value == STDIN:
            return STDIN
        try:
            return UUID(str(value))
        except ValueError:
            shown = repr(str(value)[:60] + ("…" if len(str(value)) > 60 else ""))
            self.fail(f"{shown} is not a {self.what} id (a UUID), nor - (ids on stdin)", param, ctx)


SEQUENCE_ID = UuidType("sequence")


def expand_ids(values: tuple[UUID | str, ...], what: str = "sequence") -> list[UUID]:
    """The ids given, with ``-`` replaced by the ids read from stdin (one per line; blank lines and
    ``#`` comments skipped). A bad line is a usage error naming its number."""
    ids = [v for v in values if isinstance(v, UUID)]
    if STDIN in values:
        for number, line in enumerate(sys.stdin, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                ids.append(UUID(text))
            except ValueError:
                raise click.UsageError(f"stdin line {number}: {text[:60]!r} is not a {what} id (a UUID)") from None
        if not ids:  # never "no id, so every sequence" by accident of an empty file
            raise click.UsageError(f"- was given but stdin holds no {what} id")
    return ids


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal; silent in pipes and cron."""
    if not sys.stderr.isatty() or total == 0:
        from ops.report import silent

        yield silent
        return
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True) as bar:
        yield bar.update


def counts_line(title: str, counts: dict[str, int]) -> str:
    """``deleted files: permanent 3, derivates 12, tmp 0``."""
    return f"{title}: " + ", ".join(f"{name} {n}" for name, n in counts.items())


def say(line: str) -> None:
    """One human line of a command's result on stdout; nothing with -q."""
    if not settings(click.get_current_context()).quiet:
        click.echo(line)


def progress_lines(ctx: click.Context, as_json: bool) -> Callable[[str], None]:
    """Where a command's progress lines go, decided now, in the command's own thread: stderr beside
    ``--json``, else stdout unless -q. The lines may then be written from any thread (a long statement's
    progress is reported by a watcher thread, which has no Click context), and to the stream taken now even
    while a library redirects ``sys.stdout`` (yoyo's migrations print their rows, which ops swallows)."""
    if settings(ctx).quiet and not as_json:
        return lambda _line: None
    stream = sys.stderr if as_json else sys.stdout
    return lambda line: click.echo(line, file=stream)


def emit(data: Any, as_json: bool, lines: list[str], *, always: bool = False) -> None:
    """The result of a command: JSON for scripts, or human lines. With -q the human lines are left out
    (cron mails nothing when all went well) unless ``always`` (something is wrong, say); JSON is data asked
    for, always printed."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    if settings(click.get_current_context()).quiet and not always:
        return
    for line in lines:
        click.echo(line)
