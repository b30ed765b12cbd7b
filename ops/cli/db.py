"""``ops db`` (upgrade, rollback, status, refresh) and ``ops refresh``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ops.cli.common import confirm_or_refuse, database, emit, jit_report, say, settings
from ops.cli.options import ddl_lock_timeout_option, dry_run_option, json_option, lock_timeout_option, yes_option

if TYPE_CHECKING:
    from ops.plan.planner import Plan as PlanResult
    from ops.refresh import RefreshOutcome
    from ops.schema.status import SchemaStatus
    from ops.schema.views import ViewStatus
    from ops.schema.yoyo_adapter import PlannedMigration

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


@db.command()
@dry_run_option
@lock_timeout_option
@ddl_lock_timeout_option
@click.pass_context
def upgrade(ctx: click.Context, dry_run: bool, lock_timeout: float, ddl_lock_timeout: float) -> None:
    """Apply pending migrations, in dependency order, each in its own transaction.

    Safe to run from several machines at once: one applies, the others wait and find nothing to do.

    \b
    ops db upgrade
    ops db upgrade --dry-run
    """
    from ops.schema import migrations, runner

    url, directory = _url(ctx), _dir(ctx)
    if dry_run:
        with database(ctx, "db upgrade", check_schema=False, read_only=True) as conn:
            plan = runner.plan_upgrade(conn, directory)
        if not plan:
            say("nothing to apply: database is up to date")
        _print_plan(plan, "apply")
        return
    options = migrations.RunOptions(lock_timeout_s=lock_timeout, ddl_lock_timeout_s=ddl_lock_timeout)
    result = runner.upgrade(url, directory, options=options, report=say, log=log.info)
    say("database is up to date" if result.done else "nothing to apply: database is up to date")


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

    \b
    ops db rollback
    ops db rollback --all --yes
    ops db rollback --all --dry-run
    """
    from ops.schema import migrations, runner

    url, directory = _url(ctx), _dir(ctx)
    if dry_run:
        with database(ctx, "db rollback", check_schema=False, read_only=True) as conn:
            plan = runner.plan_rollback(conn, directory, everything=everything)
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
    result = runner.rollback(url, directory, everything=everything, options=options, report=say, log=log.info)
    if not result.done:
        say("nothing to roll back")
    if result.cleaned_bookkeeping:
        say("removed the bookkeeping tables: the database holds nothing of ops")


def _plan_lines(plan: PlanResult) -> list[str]:
    from ops.plan.estimate import format_seconds
    from ops.plan.trace import sql_name

    if not plan.migrations:
        return [f"nothing to plan: no pending migration ({plan.source}) on this {plan.database}"]
    lines = [
        f"{len(plan.migrations)} pending migration(s): {plan.source}",
        f"on this {plan.database}",
        f"traced on a scratch copy of its schema ({'dropped' if plan.scratch.startswith('ops_plan') else 'emptied'}); "
        "estimated with production's sizes and this server's rates",
    ]
    if plan.leftovers:
        lines.append(f"dropped {len(plan.leftovers)} scratch database(s) left by an interrupted plan")
    for m in plan.migrations:
        sign = {"~": "~", ">=": "≥ ", "<=": "≤ "}[m.bound]
        mode = "one transaction" if m.transactional else "no transaction"
        lines.append("")
        lines.append(f"{m.id}  ({mode}, {len(m.statements)} statement(s))  {sign}{format_seconds(m.seconds)}")
        if m.not_traced:
            lines.append(f"  not traced: {m.not_traced}")
            continue
        quiet = 0
        for sp in m.statements:
            t = sp.trace
            locks = [lk for lk in t.locks if lk.production]
            shown = locks or sp.estimate.seconds > 0 or sp.estimate.bound != "~" or t.error or not t.observed
            if not shown:
                quiet += 1
                continue
            lines.append(f"  #{t.number:<3} {sp.summary}")
            if locks:
                lines.append("       locks: " + ", ".join(f"{sql_name(lk.mode)} {lk.table}" for lk in locks))
            if not t.observed:
                lines.append("       locks: not seen (ran outside a transaction and ended at once on the copy)")
            for basis in sp.estimate.basis:
                lines.append(f"       {sp.estimate.describe()}: {basis}")
            if t.error:
                lines.append(f"       FAILED on the scratch copy: {t.error}")
        if quiet:
            lines.append(f"  ({quiet} more statement(s): no lock on a table of production, no work to speak of)")
        for b in m.blocked:
            sign = {"~": "~", ">=": "≥ ", "<=": "≤ "}[b.bound]
            span = f"#{b.statement} to the commit" if m.transactional else f"during #{b.statement}"
            lines.append(f"  blocks {b.what} on {b.table}: {sign}{format_seconds(b.seconds)} ({sql_name(b.mode)}, "
                         f"{span})")  # fmt: skip
    lines.append("")
    if plan.rates:
        lines.append(f"this server's rates: {plan.rates.describe()}")
    total = sum(m.seconds for m in plan.migrations)
    lines.append(f"the upgrade: ~{format_seconds(total)} of work estimated; planned in {plan.wall_s:.1f} s")
    if plan.warnings:
        lines.append(f"{len(plan.warnings)} warning(s):")
        for w in plan.warnings:
            lines.append(f"  warning: {w.migration} {w.message}")
            lines += [f"    safer: {fix}" for fix in w.fixes]
    for error in plan.errors:
        lines.append(f"  could not plan: {error}")
    if not plan.warnings and not plan.errors:
        lines.append(f"no lock blocks writes on a table of production for longer than {plan.max_lock_s:g} s")
    return lines


def _make_plan(ctx: click.Context, panoramax: str | None, scratch_url: str | None, max_lock: float,
               cache_dir: Path | None) -> PlanResult:  # fmt: skip
    from ops.config import default_cache_dir
    from ops.plan import planner

    current = settings(ctx)
    options = planner.Options(
        panoramax_source=panoramax, scratch_url=scratch_url, max_lock_s=max_lock,
        cache_dir=cache_dir or default_cache_dir(), migrations_dir=_dir(ctx),
        connect_timeout_s=current.connect_timeout, lock_wait_s=current.read_lock_timeout,
    )  # fmt: skip
    with database(ctx, "db plan", check_schema=False) as conn:
        return planner.make_plan(conn, _url(ctx), options, progress=log.info)


@db.command("plan")
@click.option(
    "--panoramax",
    "source",
    metavar="SOURCE",
    help="On a Panoramax-managed database: the release to plan, as a version (2.15.1, fetched with pip), a "
    "geovisio wheel or sdist, or a folder of migrations.",
)
@click.option(
    "--scratch-url",
    metavar="URL",
    envvar="OPS_SCRATCH_URL",
    help="An empty database to replay the migrations on, for a role without CREATEDB (ops fills it, then "
    "empties it) [env: OPS_SCRATCH_URL].",
)
@click.option(
    "--max-lock",
    type=click.FloatRange(0, 86400),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Warn about every lock that blocks writes on a table for longer than this.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OPS_CACHE_DIR",
    help="Where fetched Panoramax releases are kept [env: OPS_CACHE_DIR; default: ~/.cache/ops].",
)
@json_option
@click.pass_context
def plan_command(
    ctx: click.Context, source: str | None, scratch_url: str | None, max_lock: float, cache_dir: Path | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Before an upgrade: what each pending migration will lock on this database, what that blocks (reads
    and writes, or writes) and for how long, with a warning for each lock that blocks writes longer than
    --max-lock.

    The migrations are replayed on a scratch copy of the schema (created on the same server and dropped at
    the end; or --scratch-url) to read their true locks and rewrites; durations come from this database's
    sizes, EXPLAIN of each data change (never executed) and this server's rates measured on a sample.
    This database is only read. Exit 0: no warning; 1: warnings; 2: could not plan.

    \b
    ops db plan
    ops db plan --panoramax 2.15.1
    ops db plan --panoramax geovisio-2.15.1-py3-none-any.whl --max-lock 2 --json
    """
    result = _make_plan(ctx, source, scratch_url, max_lock, cache_dir)
    emit(result.as_dict(), as_json, _plan_lines(result), always=result.exit_code != 0)
    if result.exit_code:
        ctx.exit(result.exit_code)


def _panoramax_status_lines(state: SchemaStatus) -> list[str]:
    d = state.detected
    lines = [d.describe() + (f" ({d.panoramax_latest_at:%Y-%m-%d %H:%M:%S})" if d.panoramax_latest_at else "")]
    lines.append("its schema is upgraded by Panoramax (flask db upgrade); ops db upgrade and rollback leave it alone")
    if d.foreign_ids:
        lines.append(
            f"note: Panoramax's history (_yoyo_migration) also names {', '.join(d.foreign_ids)}, not Panoramax "
            "migrations (written by another tool, such as ops before 0.2); ops never writes that table"
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
    from ops.errors import SchemaPending
    from ops.schema import status as core
    from ops.schema import views

    with database(ctx, "db status", check_schema=False) as conn:
        state = core.migration_status(conn, _dir(ctx))
        view_states = views.view_status(conn)
    jit = jit_report(ctx) if state.detected.panoramax else None  # Panoramax's API runs with the server's JIT
    data = {**state.as_dict(), "views": [v.as_dict() for v in view_states], "jit": jit.as_dict() if jit else None}
    lines = _status_lines(state, view_states)
    emit(data, as_json, [*lines[:-1], jit.describe(), lines[-1]] if jit else lines)
    if check and not state.up_to_date:
        raise SchemaPending(f"database schema is not current: {state.problems()}")


def _say_outcome(o: RefreshOutcome) -> None:
    if o.state == "refreshed" and o.view == "pictures_aggregate_grid":
        say(f"refreshed {o.view} in {o.duration_s:.2f} s: {o.nb_rows} cells ({o.message})")
    elif o.state == "refreshed":
        how = "concurrently" if o.concurrently else "plainly"
        say(f"refreshed {o.view} {how} in {o.duration_s:.2f} s: {o.nb_rows} rows")
    elif o.state == "skipped":
        say(f"skipped {o.view}: {o.message}")


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

    with database(ctx, "refresh") as conn:
        outcomes = core.refresh(conn, view_name, report=None if as_json else _say_outcome, full=full)
    if as_json:
        emit([o.as_dict() for o in outcomes], True, [])
    elif not outcomes:
        say("no views to refresh")
    core.raise_on_failure(outcomes)


db.add_command(refresh)
