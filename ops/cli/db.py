"""``ops db`` (upgrade, rollback, status, refresh) and ``ops refresh``. Long because it holds four commands and
their options, each upgrade and rollback with its --panoramax form (whose work is in ops.cli.panoramax_upgrade)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ops.cli.common import confirm_or_refuse, database, emit, jit_report, say, settings
from ops.cli.options import (
    ddl_lock_timeout_option,
    deadline_option,
    dry_run_option,
    json_option,
    lock_timeout_option,
    setting_option,
    yes_option,
)
from ops.cli.plan import migrations_dir, plan_command, plan_database, plan_lines
from ops.cli.registry import specified
from ops.schema.needs import Needs
from ops.settings import MIGRATIONS_DIR

if TYPE_CHECKING:
    from ops.refresh import RefreshOutcome
    from ops.schema.status import SchemaStatus
    from ops.schema.views import ViewStatus
    from ops.schema.yoyo_adapter import PlannedMigration

log = logging.getLogger("ops")


def _url(ctx: click.Context) -> str:
    return settings(ctx).require_db_url()


def _dir(ctx: click.Context) -> Path | None:
    return migrations_dir(ctx)


@click.group()
@setting_option(MIGRATIONS_DIR, "--migrations-dir")
@click.pass_context
def db(ctx: click.Context, migrations_dir: Path | None) -> None:
    """Database schema: apply, roll back and inspect migrations. Needs only DB_URL.

    \b
    ops db upgrade
    ops db status
    """
    ctx.obj = {"migrations_dir": migrations_dir}


def _print_plan(plan: list[PlannedMigration], verb: str) -> None:
    for m in plan:
        mode = "in a transaction" if m.transactional else "without a transaction (-- transactional: false)"
        say(f"would {verb} {m.id} ({len(m.statements)} statement(s), {mode})")
        for number, statement in enumerate(m.statements, start=1):
            say(f"  -- statement {number}")
            for line in statement.strip().splitlines():
                say(f"  {line}")


def _print_lock_plan(ctx: click.Context) -> None:
    """What ``ops db plan`` says of the same migrations; a plan that cannot be made (no CREATEDB, no
    --scratch-url) is one line, the dry run still lists the statements."""
    import psycopg

    from ops.errors import OpsError
    from ops.settings import MAX_LOCK, SCRATCH_URL

    say("")
    try:
        result = plan_database(ctx, None, SCRATCH_URL.from_environment(), MAX_LOCK.default, None)
    except (OpsError, psycopg.Error) as e:
        say(f"no lock plan: {' '.join(str(e).split())} (ops db plan says more)")
        return
    for line in plan_lines(result):
        say(line)


def _progress(as_json: bool) -> Callable[[str], None]:
    """Where a migration run's progress lines go: stdout, or stderr when stdout is JSON."""
    return (lambda line: click.echo(line, err=True)) if as_json else say


def _run_result(result: Any, verb: str) -> dict[str, Any]:
    return {verb: [{"id": mid, "seconds": round(seconds, 3)} for mid, seconds in result.done],
            "removed_bookkeeping": result.cleaned_bookkeeping}  # fmt: skip


@specified("ops.schema.runner:upgrade", None, writes=True,
           sql=("bookkeeping", "capabilities", "ddl", "leftovers", "plan", "panoramax_upgrade"))  # fmt: skip
@db.command()
@dry_run_option
@lock_timeout_option
@ddl_lock_timeout_option
@json_option
@click.option("--panoramax", "panoramax_source", metavar="SOURCE",
              help="On a Panoramax-managed database: apply Panoramax's pending migrations of this release (a "
              "version such as 2.15.1, a geovisio wheel or sdist, a folder) with yoyo into Panoramax's own history, "
              "as flask db upgrade does; the plan first; each migration under a short lock timeout (3 s unless "
              "--ddl-lock-timeout), retried with backoff.")  # fmt: skip
@click.option(
    "--accept-warnings",
    is_flag=True,
    help="With --panoramax: upgrade even when the plan warns (its ANALYZE warnings ops handles itself).",
)
@deadline_option
@click.pass_context
def upgrade(ctx: click.Context, dry_run: bool, lock_timeout: float, ddl_lock_timeout: float, as_json: bool,
            panoramax_source: str | None, accept_warnings: bool, deadline: float) -> None:  # fmt: skip
    """Apply pending migrations, in dependency order, each in its own transaction.

    Safe to run from several machines at once: one applies, the others wait and find nothing to do.

    \b
    ops db upgrade
    ops db upgrade --dry-run    # the statements, and what they will lock (as ops db plan)
    ops db upgrade --json       # {"applied": [{"id": …, "seconds": …}], …}; progress on stderr
    ops db upgrade --panoramax 2.15.1 --dry-run   # on Panoramax's database: the plan, what would apply
    ops db upgrade --panoramax 2.15.1             # apply it, in place of flask db upgrade
    """
    from ops.schema import migrations, runner

    if panoramax_source is not None:
        from ops.cli import panoramax_upgrade

        panoramax_upgrade.run(ctx, panoramax_source, accept_warnings=accept_warnings, dry_run=dry_run,
                              deadline_s=deadline, as_json=as_json)  # fmt: skip
        return
    if accept_warnings:
        from ops.errors import UsageError

        raise UsageError("--accept-warnings goes with --panoramax")

    url, directory = _url(ctx), _dir(ctx)
    if dry_run:
        with database(ctx, check_schema=False, read_only=True) as conn:
            plan = runner.plan_upgrade(conn, directory)
        if as_json:
            emit({"would_apply": [{"id": m.id, "statements": m.statements} for m in plan]}, True, [])
            return
        if not plan:
            say("nothing to apply: database is up to date")
            return
        _print_plan(plan, "apply")
        _print_lock_plan(ctx)
        return
    options = migrations.RunOptions(lock_timeout_s=lock_timeout, ddl_lock_timeout_s=ddl_lock_timeout)
    result = runner.upgrade(url, directory, options=options, report=_progress(as_json), log=log.info)
    emit(_run_result(result, "applied"), as_json,
         ["database is up to date" if result.done else "nothing to apply: database is up to date"])  # fmt: skip


@specified(
    "ops.schema.runner:rollback",
    None,
    writes=True,
    sql=("bookkeeping", "capabilities", "ddl", "panoramax_upgrade"),
    not_benched="undoes ops's own migrations by hand; its cost is that of the rollback SQL",
)
@db.command()
@click.option("--all", "everything", is_flag=True, help="Roll back every migration: nothing created by ops remains.")
@yes_option
@dry_run_option
@lock_timeout_option
@ddl_lock_timeout_option
@json_option
@click.option("--panoramax", "panoramax_source", metavar="SOURCE",
              help="On a Panoramax-managed database: roll back the last of Panoramax's migrations of this release "
              "(every one with --all) with yoyo, out of Panoramax's own history, as flask db rollback does; each "
              "under a short lock timeout (3 s unless --ddl-lock-timeout), retried with backoff.")  # fmt: skip
@deadline_option
@click.pass_context
def rollback(
    ctx: click.Context, everything: bool, yes: bool, dry_run: bool, lock_timeout: float, ddl_lock_timeout: float,
    as_json: bool, panoramax_source: str | None, deadline: float,
) -> None:  # fmt: skip
    """Roll back the most recently applied migration (by time applied), or all with --all.

    --all deletes every table of ops and their data: it asks first on a terminal and needs --yes otherwise.

    \b
    ops db rollback
    ops db rollback --all --yes
    ops db rollback --all --dry-run
    ops db rollback --json      # {"rolled_back": [{"id": …, "seconds": …}], …}
    ops db rollback --panoramax 2.15.1 --dry-run   # on Panoramax's database: what flask db rollback would undo
    """
    from ops.schema import migrations, runner

    if panoramax_source is not None:
        from ops.cli import panoramax_upgrade

        panoramax_upgrade.run_rollback(ctx, panoramax_source, everything=everything, yes=yes, dry_run=dry_run,
                                       deadline_s=deadline, as_json=as_json)  # fmt: skip
        return
    url, directory = _url(ctx), _dir(ctx)
    if dry_run:
        with database(ctx, check_schema=False, read_only=True) as conn:
            plan = runner.plan_rollback(conn, directory, everything=everything)
        if as_json:
            emit({"would_roll_back": [{"id": m.id, "statements": m.statements} for m in plan]}, True, [])
            return
        if not plan:
            say("nothing to roll back")
        _print_plan(plan, "roll back")
        return
    if everything and not yes:
        confirm_or_refuse(
            "Roll back ALL migrations? Every table of ops and its data will be deleted",
            "--all deletes every table of ops and its data; add --yes to confirm",
        )
    options = migrations.RunOptions(lock_timeout_s=lock_timeout, ddl_lock_timeout_s=ddl_lock_timeout)
    result = runner.rollback(url, directory, everything=everything, options=options, report=_progress(as_json),
                             log=log.info)  # fmt: skip
    lines = [] if result.done else ["nothing to roll back"]
    lines += ["removed the bookkeeping tables: the database holds nothing of ops"] if result.cleaned_bookkeeping else []
    emit(_run_result(result, "rolled_back"), as_json, lines)


def _panoramax_status_lines(state: SchemaStatus) -> list[str]:
    d = state.detected
    lines = [d.describe()]
    lines.append("its schema is upgraded by Panoramax (flask db upgrade); ops db upgrade and rollback leave it alone")
    if d.foreign_ids:
        lines.append(
            f"note: Panoramax's history (_yoyo_migration) also names {', '.join(d.foreign_ids)}, not Panoramax "
            "migrations (written by another tool, such as development builds of ops before 0.1.0); ops never writes that table"
        )
    for command, lacking in state.lacking.items():
        lines.append(f"ops {command}: " + ("ready" if not lacking else "lacks " + ", ".join(lacking)))
    verdict = "every maintenance command can run" if state.up_to_date else "some maintenance commands cannot run"
    lines.append(verdict)
    return lines


def _status_lines(state: SchemaStatus, view_states: list[ViewStatus]) -> list[str]:
    if state.detected.panoramax:
        return _panoramax_status_lines(state)
    width = max((len(m.id) for m in state.migrations), default=10)
    lines = []
    for m in state.migrations:
        when = m.applied_at.strftime("%Y-%m-%d %H:%M:%S") if m.applied_at else ""
        lines.append(f"{m.id:<{width}}  {m.state:<8}  {when}".rstrip())
    for v in view_states:
        if v.refreshed_at:
            duration = (v.refresh_duration_ms or 0) / 1000
            when = f"refreshed {v.refreshed_at:%Y-%m-%d %H:%M:%S} in {duration:.2f} s, {v.nb_rows} rows"
        else:
            when = "never refreshed"
        lines.append(f"view {v.name}: {when}{'' if v.populated else ' (not populated)'}")
    lines += [f"{problem}: run ops db upgrade" for problem in state.views]
    summary = ", ".join(f"{n} {s}" for s, n in state.counts.items()) or "no migrations"
    lines.append(f"{summary}; {'up to date' if state.up_to_date else 'schema NOT up to date: run ops db upgrade'}")
    return lines


@specified("ops.schema.status:migration_status", None, writes=False,
           sql=("bookkeeping", "capabilities", "ddl", "sequence_targets"))  # fmt: skip
@db.command()
@click.option(
    "--check", is_flag=True, help="Exit 1 when a migration is pending, modified or missing (container start-up)."
)
@json_option
@click.pass_context
def status(ctx: click.Context, check: bool, as_json: bool) -> None:
    """Show every migration as applied, pending, modified (file changed since) or missing (file gone).

    On a database built by Panoramax: its version, and whether each maintenance command finds what it
    uses (tables, columns, enum labels, functions).

    \b
    ops db status
    ops db status --check --json
    """
    from ops.cli import specs
    from ops.commands import needs_by_command
    from ops.errors import SchemaPending
    from ops.schema import status as core
    from ops.schema import views

    with database(ctx, check_schema=False) as conn:
        state = core.migration_status(conn, _dir(ctx), needs_by_command(specs()))
        view_states = views.view_status(conn)
    jit = jit_report(ctx) if state.detected.panoramax else None  # Panoramax's API runs with the server's JIT
    data = {**state.as_dict(), "views": [v.as_dict() for v in view_states], "jit": jit.as_dict() if jit else None}
    lines = _status_lines(state, view_states)
    emit(data, as_json, [*lines[:-1], jit.describe(), lines[-1]] if jit else lines)
    if check and not state.up_to_date:
        raise SchemaPending(f"database schema is not current: {state.problems()}")


def _say_outcome(o: RefreshOutcome) -> None:
    from ops.refresh import RefreshState

    if o.state == RefreshState.REFRESHED and o.view == "pictures_aggregate_grid":
        say(f"refreshed {o.view} in {o.duration_s:.2f} s: {o.nb_rows} cells ({o.message})")
    elif o.state == RefreshState.REFRESHED:
        how = "concurrently" if o.concurrently else "plainly"
        say(f"refreshed {o.view} {how} in {o.duration_s:.2f} s: {o.nb_rows} rows")
    elif o.state == RefreshState.SKIPPED:
        say(f"skipped {o.view}: {o.message}")


@specified(
    "ops.refresh:refresh",
    Needs({"refresh_database": ("refreshed_at",)}),
    writes=True,
    sql=("panoramax_refresh", "bookkeeping", "capabilities", "ddl"),
    views_in_sync=True,
)
@click.command("refresh")
@click.option("--view", "view_name", metavar="NAME", help="Refresh only this view (ops-managed databases).")
@click.option(
    "--full",
    is_flag=True,
    help="On a Panoramax database: rebuild the whole map grid, not only its expired cells (readers wait, "
    "never see it empty). ops's views are always refreshed whole.",
)
@json_option
@click.pass_context
def refresh(ctx: click.Context, view_name: str | None, full: bool, as_json: bool) -> None:
    """Refresh what the map and statistics read (what the cron job runs).

    On an ops-managed database, the materialized views of sql/views: each CONCURRENTLY when it is populated
    and has its unique index (readers are never blocked), plainly otherwise. On a Panoramax-managed database,
    what Panoramax's db refresh does: its map grid's expired cells (--full: the whole grid). One refresh at a
    time across all machines: one running elsewhere is reported as skipped (exit 0). Exit 1 when one fails.

    \b
    ops refresh
    ops db refresh --view pictures_grid --json
    ops refresh --full
    """
    from ops import refresh as core

    with database(ctx) as conn:
        outcomes = core.refresh(conn, view_name, report=None if as_json else _say_outcome, full=full)
    if as_json:
        emit([o.as_dict() for o in outcomes], True, [])
    elif not outcomes:
        say("no views to refresh")
    core.raise_on_failure(outcomes)


db.add_command(refresh)


db.add_command(plan_command)


COMMANDS = (db, refresh)
