"""``ops db``: migrations (upgrade, rollback, status)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from ops.cli.common import settings
from ops.cli.options import ddl_lock_timeout_option, dry_run_option, json_option, lock_timeout_option, yes_option

log = logging.getLogger("ops")


def _url(ctx: click.Context) -> str:
    return settings(ctx).require_db_url()


def _dir(ctx: click.Context) -> Path | None:
    value = ctx.find_object(dict)
    return value.get("migrations_dir") if value else None


@click.group()
@click.option(
    "--migrations-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OPS_MIGRATIONS_DIR",
    hidden=True,
    help="Use migrations from this folder instead of the packaged ones (tests, development).",
)
@click.pass_context
def db(ctx: click.Context, migrations_dir: Path | None) -> None:
    """Database schema: apply, roll back and inspect migrations. Needs only DB_URL."""
    ctx.obj = {"migrations_dir": migrations_dir}


def _print_plan(plan: list[Any], verb: str) -> None:
    for m in plan:
        mode = "in a transaction" if m.transactional else "without a transaction (-- transactional: false)"
        click.echo(f"would {verb} {m.id} ({len(m.statements)} statement(s), {mode})")
        for number, statement in enumerate(m.statements, start=1):
            click.echo(f"  -- statement {number}")
            for line in statement.strip().splitlines():
                click.echo(f"  {line}")


@db.command()
@dry_run_option
@lock_timeout_option
@ddl_lock_timeout_option
@click.pass_context
def upgrade(ctx: click.Context, dry_run: bool, lock_timeout: float, ddl_lock_timeout: float) -> None:
    """Apply pending migrations, in dependency order, each in its own transaction.

    Safe to run from several machines at once: one applies, the others wait and find nothing to do.

        ops db upgrade
        ops db upgrade --dry-run
    """
    from ops import db as dbmod
    from ops import migrations

    url, directory = _url(ctx), _dir(ctx)
    if dry_run:
        with dbmod.connect(url) as conn:
            conn.read_only = True
            plan = migrations.plan_upgrade(conn, directory or migrations.default_migrations_dir())
        if not plan:
            click.echo("nothing to apply: database is up to date")
        _print_plan(plan, "apply")
        return
    options = migrations.RunOptions(lock_timeout_s=lock_timeout, ddl_lock_timeout_s=ddl_lock_timeout)
    result = migrations.upgrade(url, directory, options=options, report=click.echo, log=log.info)
    click.echo("database is up to date" if result.done else "nothing to apply: database is up to date")


@db.command()
@click.option("--all", "everything", is_flag=True, help="Roll back every migration: nothing created by ops remains.")
@yes_option
@dry_run_option
@lock_timeout_option
@ddl_lock_timeout_option
@click.pass_context
def rollback(
    ctx: click.Context, everything: bool, yes: bool, dry_run: bool, lock_timeout: float, ddl_lock_timeout: float
) -> None:
    """Roll back the most recently applied migration (by time applied), or all with --all.

    --all deletes every table of ops and their data: it asks first on a terminal and needs --yes otherwise.

        ops db rollback
        ops db rollback --all --yes
    """
    from ops import db as dbmod
    from ops import migrations

    url, directory = _url(ctx), _dir(ctx)
    if dry_run:
        with dbmod.connect(url) as conn:
            conn.read_only = True
            plan = migrations.plan_rollback(
                conn, directory or migrations.default_migrations_dir(), everything=everything
            )
        if not plan:
            click.echo("nothing to roll back")
        _print_plan(plan, "roll back")
        return
    if everything and not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("--all deletes every table of ops and its data; add --yes to confirm")
        click.confirm("Roll back ALL migrations? Every table of ops and its data will be deleted", abort=True, err=True)
    options = migrations.RunOptions(lock_timeout_s=lock_timeout, ddl_lock_timeout_s=ddl_lock_timeout)
    result = migrations.rollback(
        url, directory, everything=everything, options=options, report=click.echo, log=log.info
    )
    if not result.done:
        click.echo("nothing to roll back")
    if result.cleaned_bookkeeping:
        click.echo("removed the bookkeeping tables: the database holds nothing of ops")


@db.command()
@click.option(
    "--check", is_flag=True, help="Exit 1 when a migration is pending, modified or missing (container start-up)."
)
@json_option
@click.pass_context
def status(ctx: click.Context, check: bool, as_json: bool) -> None:
    """Show every migration as applied, pending, modified (file changed since) or missing (file gone).

    ops db status
    ops db status --check --json
    """
    from ops import db as dbmod
    from ops import migrations, views

    url, directory = _url(ctx), _dir(ctx)
    with dbmod.connect(url) as conn:
        conn.read_only = True
        states = migrations.migration_status(conn, directory or migrations.default_migrations_dir())
        view_states = views.view_status(conn)
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    current = not any(s.state != "applied" for s in states)
    if as_json:
        data = {
            "up_to_date": current,
            "counts": counts,
            "migrations": [s.as_dict() for s in states],
            "views": [v.as_dict() for v in view_states],
        }
        click.echo(json.dumps(data, indent=2))
    else:
        width = max((len(s.id) for s in states), default=10)
        for s in states:
            when = s.applied_at.strftime("%Y-%m-%d %H:%M:%S") if s.applied_at else ""
            click.echo(f"{s.id:<{width}}  {s.state:<8}  {when}".rstrip())
        for v in view_states:
            if v.refreshed_at:
                when = f"refreshed {v.refreshed_at:%Y-%m-%d %H:%M:%S} in {v.refresh_duration_ms / 1000:.2f} s, {v.nb_rows} rows"
            else:
                when = "never refreshed"
            click.echo(f"view {v.name}: {when}{'' if v.populated else ' (not populated)'}")
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no migrations"
        click.echo(f"{summary}; {'up to date' if current else 'schema NOT up to date: run ops db upgrade'}")
    if check and not current:
        bad = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()) if state != "applied")
        click.echo(f"error: database schema is not current: {bad}", err=True)
        ctx.exit(1)


@click.command("refresh")
@click.option("--view", "view_name", metavar="NAME", help="Refresh only this view.")
@json_option
@click.pass_context
def refresh(ctx: click.Context, view_name: str | None, as_json: bool) -> None:
    """Refresh the materialized views of sql/views (what the cron job runs).

    Each view is refreshed CONCURRENTLY when it is populated and has its unique index (readers are never
    blocked), plainly otherwise. One refresh per view at a time across all machines: a view being refreshed
    elsewhere is reported as skipped (exit 0). Exit 1 when a refresh fails.

        ops refresh
        ops db refresh --view pictures_grid --json
    """
    from ops import views
    from ops.cli.common import database

    def say(o: views.RefreshOutcome) -> None:
        if as_json:
            return
        if o.state == "refreshed":
            how = "concurrently" if o.concurrently else "plainly"
            click.echo(f"refreshed {o.view} {how} in {o.duration_s:.2f} s: {o.nb_rows} rows")
        elif o.state == "skipped":
            click.echo(f"skipped {o.view}: {o.message}")
        else:
            click.echo(f"error: refresh of {o.view} failed: {o.message}", err=True)

    with database(ctx) as conn:
        outcomes = views.refresh(conn, view_name, report=say)
    if as_json:
        click.echo(json.dumps([o.as_dict() for o in outcomes], indent=2))
    if not outcomes and not as_json:
        click.echo("no views to refresh")
    if views.failed(outcomes):
        ctx.exit(1)


db.add_command(refresh)
