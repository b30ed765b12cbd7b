"""``ops health``: a monitoring check (Nagios exit codes, JSON, Prometheus textfile)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import click

from ops.cli.common import emit, settings
from ops.cli.jobs import DURATION

if TYPE_CHECKING:
    import psycopg


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--prometheus", is_flag=True, help="Print gauges in node_exporter's textfile format.")
@click.option("--queue-warning", type=click.IntRange(min=1), default=1_000, show_default=True, metavar="JOBS")
@click.option("--queue-critical", type=click.IntRange(min=1), default=10_000, show_default=True, metavar="JOBS")
@click.option("--age-warning", type=DURATION, default="1h", show_default=True, help="Oldest ready job.")
@click.option("--age-critical", type=DURATION, default="6h", show_default=True, help="Oldest ready job.")
@click.option("--failures-warning", type=click.IntRange(min=1), default=1, show_default=True, metavar="JOBS",
              help="Jobs failed in the last 24 h.")  # fmt: skip
@click.option("--failures-critical", type=click.IntRange(min=1), default=100, show_default=True, metavar="JOBS")
@click.option(
    "--refresh-cron",
    default="0 2 * * *",
    show_default=True,
    envvar="PICTURE_PROCESS_REFRESH_CRON",
    help="When refreshes are due [env: PICTURE_PROCESS_REFRESH_CRON].",
)
@click.option("--refresh-grace", type=DURATION, default="1h", show_default=True, help="Overdue refresh: warning.")
@click.option("--refresh-critical", type=DURATION, default="1d", show_default=True, help="Overdue refresh: critical.")
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
) -> None:
    """Check the instance in one read-only pass: database, schema, queue depth and oldest job, failures in
    the last 24 h, last refresh against the cron, storage. Exit 0 ok, 1 warning, 2 critical.

    \b
    ops health
    ops health --json
    ops health --prometheus > /var/lib/node_exporter/ops.prom
    """
    from ops import db, jobs, storage
    from ops import health as core
    from ops.storage import Storage

    if as_json and prometheus:
        raise click.UsageError("--json and --prometheus go apart")
    jobs.validate_cron(refresh_cron)
    limits = core.Thresholds(
        queue_warning, queue_critical, age_warning.total_seconds(), age_critical.total_seconds(),
        failures_warning, failures_critical, refresh_grace.total_seconds(), refresh_critical.total_seconds(),
        refresh_cron,
    )  # fmt: skip
    current = settings(ctx)

    def connect() -> psycopg.Connection:
        return db.connect(current.require_db_url(), autocommit=True)

    def open_storage() -> Storage:
        return storage.from_settings(current)

    configured = any((current.fs_url, current.fs_permanent_url, current.fs_derivates_url, current.fs_tmp_url))
    report = core.run(connect, open_storage if configured else None, limits)
    if prometheus:
        click.echo(report.prometheus(), nl=False)
    else:
        lines = [f"{c.state.upper():<8} {c.name}: {c.message}" for c in report.checks]
        emit(report.as_dict(), as_json, [*lines, f"health: {report.state}"])
    ctx.exit(report.exit_code)  # the answer itself, as Nagios-style checks give it
