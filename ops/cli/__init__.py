"""The ``ops`` command line: a thin Click layer over the core modules.

Each command parses and validates its arguments, calls one core function, prints its result on stdout and
lets ``ops.errors`` reach the one mapping here (``OpsGroup.invoke``): ``error: <message>`` on stderr with
the error's exit code (1, or 2 for usage errors). Logs and progress go to stderr.

Why imports are deferred, once for the whole CLI: start-up time. The core modules import psycopg
(~0.15 s), yoyo and boto3 (~0.3 s) at their top, so the command modules of this package import a core module
inside the command function that uses it, and this module imports a command module only when the command
is looked up (``ops.cli.registry``). ``ops --help``, a typo or a bad argument then answer in about 0.1 s.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Any

import click

from ops import __version__
from ops.cli import registry
from ops.cli.common import settings as current_settings
from ops.cli.options import F, setting_option
from ops.commands import Spec
from ops.config import load_dotenv_file, scrub
from ops.errors import OpsError
from ops.settings import ENV_FILE, Settings, global_settings

log = logging.getLogger("ops")


class OpsGroup(click.Group):
    """A group whose commands are imported only when called, and whose errors are one clean line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return registry.top_level_names()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return registry.top_level(name)

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


def _global_options(command: F) -> F:
    """The options of every global setting (``ops.settings.Settings``), in the table's order."""
    for name, setting in reversed(global_settings().items()):
        command = setting_option(setting, *(setting.names or (f"--{name.replace('_', '-')}",)))(command)
    return command


@click.group(cls=OpsGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ops")
@setting_option(ENV_FILE, "--env-file", is_eager=True, expose_value=False, callback=_load_env_file)
@_global_options
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


def specs() -> list[Spec]:
    """Every command's spec, with its path: what the reference, the guard's lists and the benchmarks read."""
    return registry.specs(cli)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ops")
