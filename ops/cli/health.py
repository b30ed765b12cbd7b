"""``ops health``: a monitoring check (Nagios plugin output and exit codes, JSON, Prometheus textfile)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING

import click

from ops import settings as settings_table
from ops.cli.common import emit, settings
from ops.cli.options import json_option, refresh_cron_option, setting_option
from ops.cli.prometheus import textfile
from ops.cli.registry import specified

if TYPE_CHECKING:
    import psycopg

    from ops.health import Check, HealthReport
    from ops.storage import Storage

UNKNOWN = 3  # Nagios' "could not check": what a monitoring system must see for a check it cannot run


class NagiosCommand(click.Command):
    """A usage error of a monitoring check is UNKNOWN (exit 3, a status line on stdout, where the monitoring
    system reads it), never CRITICAL (2, Click's usage exit): a typo in a check's definition is not an outage."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: object) -> click.Context:  # fmt: skip
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:
            _unknown(e)
            raise  # not reached


def _unknown(error: click.UsageError) -> None:
    click.echo(f"OPS HEALTH UNKNOWN - usage: {error.format_message()}")
    error.show()
    raise click.exceptions.Exit(UNKNOWN)


@specified(
    "ops.health:run",
    None,
    writes=False,
    sql=("jobs_view", "panoramax_refresh", "bookkeeping", "capabilities", "storage_check"),
    not_benched="a handful of index lookups bounded by --timeout; its start-up is in the start-up rows",
)
@click.command(cls=NagiosCommand)
@json_option
@click.option("--prometheus", is_flag=True, help="Print gauges in node_exporter's textfile format.")
@setting_option(settings_table.QUEUE_WARNING, "--queue-warning")
@setting_option(settings_table.QUEUE_CRITICAL, "--queue-critical")
@setting_option(settings_table.AGE_WARNING, "--age-warning")
@setting_option(settings_table.AGE_CRITICAL, "--age-critical")
@setting_option(settings_table.FAILURES_WARNING, "--failures-warning")
@setting_option(settings_table.FAILURES_CRITICAL, "--failures-critical")
@refresh_cron_option
@setting_option(settings_table.REFRESH_GRACE, "--refresh-grace")
@setting_option(settings_table.REFRESH_CRITICAL, "--refresh-critical")
@setting_option(settings_table.HEALTH_TIMEOUT, "--timeout")
@click.pass_context
def health(
    ctx: click.Context,
    as_json: bool,
    prometheus: bool,
    queue_warning: int,
    queue_critical: int,
    age_warning: timedelta,
    age_critical: timedelta,
    failures_warning: int,
    failures_critical: int,
    refresh_cron: str,
    refresh_grace: timedelta,
    refresh_critical: timedelta,
    timeout: float,
) -> None:
    """Check the instance in one read-only pass: database, schema, queue depth and oldest job, failures in
    the last 24 h, last refresh against the cron, storage. Exit 0 ok, 1 warning, 2 critical, within
    --timeout whatever fails.

    The first line is the overall state and summary, with performance data after | (Nagios plugin
    guidelines); one line per check follows.

    \b
    ops health
    ops health --json
    ops health --prometheus > /var/lib/node_exporter/ops.prom
    """
    from ops import db, storage, worker
    from ops import health as core
    from ops.cli import specs
    from ops.commands import all_needs

    if as_json and prometheus:
        _unknown(click.UsageError("--json and --prometheus go apart", ctx))
    worker.validate_cron(refresh_cron)
    current = settings(ctx)
    limits = core.Thresholds(
        queue_warning, queue_critical, age_warning.total_seconds(), age_critical.total_seconds(),
        failures_warning, failures_critical, refresh_grace.total_seconds(), refresh_critical.total_seconds(),
        refresh_cron, timeout, current.read_lock_timeout,
    )  # fmt: skip
    if limits.contradictions():
        _unknown(click.UsageError("; ".join(limits.contradictions()), ctx))

    def connect(server_settings: dict[str, str | int], timeout_s: float) -> psycopg.Connection:
        return db.connect(current.require_db_url(), autocommit=True, server_settings=server_settings,
                          connect_timeout_s=min(timeout_s, current.connect_timeout), jit=current.jit)  # fmt: skip

    def open_storage() -> Storage:
        return storage.from_settings(current)

    report = core.run(connect, open_storage if current.storage_configured else None, limits, all_needs(specs()))
    if prometheus:
        click.echo(textfile(core.FAMILIES, report.series()), nl=False)
    else:
        emit(report.as_dict(), as_json, nagios(report), always=report.exit_code != 0)
    ctx.exit(report.exit_code)  # the answer itself, as Nagios-style checks give it


PERFDATA = {"database": "database_time", "queue": "queued", "oldest_job": "oldest_job", "failures": "failures_24h",
            "refresh": "refresh_age"}  # fmt: skip


def nagios(report: HealthReport) -> list[str]:
    """Nagios plugin output: the first line is the overall state, its summary and the performance data after
    ``|``; then one line per check."""
    from ops.health import Status

    worst = [c for c in report.checks.values() if c.state == report.state and c.state != Status.OK]
    summary = "; ".join(f"{c.name}: {c.message}" for c in worst) or f"{len(report.checks)} checks ok"
    perf = " ".join(_perfdata(c) for c in report.checks.values() if c.name in PERFDATA)
    lines = [f"OPS HEALTH {report.state.upper()} - {summary} | {perf}"]
    return lines + [f"{c.state.upper():<8} {c.name}: {c.message}" for c in report.checks.values()]


def _perfdata(check: Check) -> str:
    """``label=value[UOM];[warn];[crit];[min];[max]``, ``U`` for a value not read (the plugin guidelines)."""

    def number(value: float | None) -> str:
        if value is None:
            return ""
        return f"{value:.1f}" if check.unit == "ms" else f"{value:.0f}"  # whole seconds and counts

    if check.value is None or math.isinf(check.value):
        return f"{PERFDATA[check.name]}=U"
    return (
        f"{PERFDATA[check.name]}={number(check.value)}{check.unit};{number(check.warning)};{number(check.critical)};0;"
    )


COMMANDS = (health,)
