"""The ``ops`` command line: a thin Click layer over the core modules.

Each command parses and validates its arguments, calls one core function, prints its result on stdout and
lets ``ops.errors`` reach the one mapping here (``OpsGroup.invoke``): ``error: <message>`` on stderr with
the error's exit code (1, or 2 for usage errors). Logs and progress go to stderr.

Why imports are deferred, once for the whole CLI: start-up time. The core modules import psycopg
(~0.15 s), yoyo and boto3 (~0.3 s) at their top, so the command modules of this package import a core module
inside the command function that uses it, and this module imports a command module only when the command
is looked up (``OpsGroup.lazy``). ``ops --help``, a typo or a bad argument then answer in about 0.1 s.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from typing import Any, ClassVar

import click

from ops import __version__
from ops.cli.common import settings as current_settings
from ops.cli.options import Seconds
from ops.commands import lazy_table
from ops.config import Settings, load_dotenv_file, scrub
from ops.errors import OpsError

log = logging.getLogger("ops")


class OpsGroup(click.Group):
    """A group whose commands are imported only when called, and whose errors are one clean line."""

    lazy: ClassVar[dict[str, tuple[str, str]]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module_name, attr = self.lazy[name]
            command: click.Command = getattr(importlib.import_module(module_name), attr)
            return command
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except OpsError as e:
            _fail(ctx, str(e), e.exit_code, e)
        except KeyboardInterrupt:
            _fail(ctx, "interrupted", 130, None)
        except BrokenPipeError:  # `ops ... | head`: the reader left, nothing to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(1)
        except Exception as e:  # an unexpected failure: one line, the traceback only with -v
            _fail(ctx, f"unexpected {type(e).__name__}: {' '.join(str(e).split())}", 1, e)


def _fail(ctx: click.Context, message: str, code: int, exc: BaseException | None) -> None:
    settings = current_settings(ctx)
    secrets = settings.secrets()
    if exc is not None and settings.verbose and not isinstance(exc, OpsError):
        click.echo(scrub("".join(traceback.format_exception(exc)), secrets), err=True)
    click.echo(f"error: {scrub(message, secrets)}", err=True)
    ctx.exit(code)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("ops")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _load_env_file(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Eager: the .env file is read before any other option looks at the environment (real variables win)."""
    from pathlib import Path

    if value is not None and not Path(value).is_file():
        raise click.BadParameter(f"{value!r} is not a file", ctx=ctx, param_hint="'--env-file'")
    try:
        load_dotenv_file(Path(value) if value is not None else None)
    except OpsError as e:
        click.echo(f"error: {e}", err=True)
        ctx.exit(e.exit_code)


@click.group(cls=OpsGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ops")
@click.option(
    "--env-file",
    envvar="OPS_ENV_FILE",
    metavar="PATH",
    is_eager=True,
    expose_value=False,
    callback=_load_env_file,
    help="Read settings from this file instead of ./.env (real environment variables win) [env: OPS_ENV_FILE].",
)
@click.option(
    "--db-url",
    envvar="DB_URL",
    metavar="URL",
    help="PostgreSQL URL, postgresql://user:password@host:port/db [env: DB_URL].",
)
@click.option(
    "--secret-key",
    envvar=["FLASK_SECRET_KEY", "SECRET_KEY"],
    metavar="KEY",
    help="Secret that signs tokens [env: FLASK_SECRET_KEY or SECRET_KEY].",
)
@click.option(
    "--fs-url", envvar="FS_URL", metavar="URL", help="Root of picture storage: a path, file:// or s3:// [env: FS_URL]."
)
@click.option(
    "--fs-permanent-url", envvar="FS_PERMANENT_URL", metavar="URL", help="Original pictures [env: FS_PERMANENT_URL]."
)
@click.option(
    "--fs-derivates-url", envvar="FS_DERIVATES_URL", metavar="URL", help="Derived files [env: FS_DERIVATES_URL]."
)
@click.option("--fs-tmp-url", envvar="FS_TMP_URL", metavar="URL", help="Pictures being processed [env: FS_TMP_URL].")
@click.option(
    "--connect-timeout",
    envvar="OPS_CONNECT_TIMEOUT",
    type=Seconds(2, 3600),
    default=10,
    show_default=True,
    metavar="SECONDS",
    help="Longest wait for the database to accept a connection [env: OPS_CONNECT_TIMEOUT].",
)
@click.option(
    "--read-lock-timeout",
    envvar="OPS_READ_LOCK_TIMEOUT",
    type=Seconds(0, 3600),
    default=5,
    show_default=True,
    metavar="SECONDS",
    help="Read-only commands: longest wait for a lock (lock_timeout; 0: no limit) [env: OPS_READ_LOCK_TIMEOUT].",
)
@click.option(
    "--read-statement-timeout",
    envvar="OPS_READ_STATEMENT_TIMEOUT",
    type=Seconds(0, 86400),
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="Read-only commands: longest statement (statement_timeout; 0: no limit) [env: OPS_READ_STATEMENT_TIMEOUT].",
)
@click.option(
    "--read-deadline",
    envvar="OPS_READ_DEADLINE",
    type=Seconds(0, 86400),
    default=900,
    show_default=True,
    metavar="SECONDS",
    help="Read-only commands: longest time for their whole database work, whatever the link (its query is "
    "cancelled then; 0: no limit) [env: OPS_READ_DEADLINE].",
)
@click.option(
    "--write-lock-timeout",
    envvar="OPS_WRITE_LOCK_TIMEOUT",
    type=Seconds(0, 86400),
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="Commands that write: longest wait for a lock held by another session, which is then named "
    "(lock_timeout; 0: no limit) [env: OPS_WRITE_LOCK_TIMEOUT].",
)
@click.option(
    "--s3-connect-timeout",
    envvar="OPS_S3_CONNECT_TIMEOUT",
    type=Seconds(0.1, 600),
    default=5,
    show_default=True,
    metavar="SECONDS",
    help="S3: longest wait to connect [env: OPS_S3_CONNECT_TIMEOUT].",
)
@click.option(
    "--s3-read-timeout",
    envvar="OPS_S3_READ_TIMEOUT",
    type=Seconds(0.1, 3600),
    default=20,
    show_default=True,
    metavar="SECONDS",
    help="S3: longest wait for an answer [env: OPS_S3_READ_TIMEOUT].",
)
@click.option(
    "--s3-deadline",
    envvar="OPS_S3_DEADLINE",
    type=Seconds(1, 86400),
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="S3: longest time one call may take, its retries included [env: OPS_S3_DEADLINE].",
)
@click.option(
    "--s3-max-attempts",
    envvar="AWS_MAX_ATTEMPTS",
    type=click.IntRange(1, 20),
    default=5,
    show_default=True,
    help="S3: attempts per call, botocore's standard retry mode [env: AWS_MAX_ATTEMPTS].",
)
@click.option(
    "--jit/--no-jit",
    envvar="OPS_JIT",
    default=False,
    show_default=True,
    help="Let PostgreSQL JIT-compile ops's statements. Off: compiling Panoramax's per-sequence functions costs "
    "far more than it saves (docs/performance.md) [env: OPS_JIT].",
)
@click.option("-v", "--verbose", count=True, help="More logs on stderr, and tracebacks of unexpected errors.")
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Print nothing but warnings and errors (for cron): no result lines, no logs. --json output, a token "
    "and a health check that is not OK are still printed.",
)
@click.pass_context
def cli(ctx: click.Context, **values: Any) -> None:
    """Migrations and operations for a Panoramax-style picture database and storage.

    Settings come from options, environment variables (same names as Panoramax) or a .env file (in the
    current directory, or --env-file).

    Exit codes: 0 success; 1 failure or a finding (a file not deleted, a job given up: never 0); 2 bad
    usage; 3 could not check (doctor, db plan: the database out of reach, a check not run). health follows
    Nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (its usage errors included).

    \b
    DB_URL=postgresql://geovisio@localhost/geovisio ops db status
    ops --help
    """
    ctx.obj = Settings(**values)
    _setup_logging(ctx.obj.verbose, ctx.obj.quiet)


OpsGroup.lazy = lazy_table()  # every command and group, from its spec (ops/commands.py)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ops")
