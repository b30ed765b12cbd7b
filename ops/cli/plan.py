"""``ops db plan``: what the pending migrations will lock on this database, and for how long (the core is
``ops.plan.planner``); ``ops db upgrade --dry-run`` prints the same plan."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ops.cli.common import could_not_check, database, emit, settings
from ops.cli.options import json_option, setting_option
from ops.cli.registry import specified
from ops.settings import CACHE_DIR, MAX_LOCK, SCRATCH_URL

if TYPE_CHECKING:
    from ops.plan.records import Plan as PlanResult

log = logging.getLogger("ops")


def migrations_dir(ctx: click.Context) -> Path | None:
    """The hidden ``ops db --migrations-dir`` (tests, development), or None for the packaged migrations."""
    value = ctx.find_object(dict)
    return value.get("migrations_dir") if value else None


def plan_lines(plan: PlanResult) -> list[str]:
    from ops.plan.bound import Bound, format_seconds
    from ops.plan.trace import sql_name

    if not plan.migrations:
        return [f"nothing to plan: no pending migration ({plan.source}) on this {plan.database}"]
    lines = [
        f"{len(plan.migrations)} pending migration(s): {plan.source}",
        f"on this {plan.database}",
        f"traced on a scratch copy of its schema ({'dropped' if plan.scratch.startswith('ops_plan') else 'emptied'}); "
        "estimated with production's sizes and this server's rates",
    ]
    lines.append(f"replayed unconfined ({plan.unconfined})" if plan.unconfined else
                 "replayed as a role of its own, which may reach nothing beyond the scratch copy")  # fmt: skip
    if plan.leftovers:
        lines.append(f"dropped {len(plan.leftovers)} scratch database(s) left by an interrupted plan")
    for m in plan.migrations:
        mode = "one transaction" if m.transactional else "no transaction"
        lines.append("")
        lines.append(f"{m.id}  ({mode}, {len(m.statements)} statement(s))  {m.bound.figure(m.seconds)}")
        lines.extend(f"  first: {what}" for what in m.interrupted)
        if m.not_traced:
            lines.append(f"  not traced: {m.not_traced}")
            continue
        quiet = 0
        for sp in m.statements:
            t = sp.trace
            locks = [lk for lk in t.locks if lk.production]
            shown = locks or sp.estimate.seconds > 0 or sp.estimate.bound != Bound.ABOUT or t.error or not t.observed
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
            span = f"#{b.statement} to the commit" if m.transactional else f"during #{b.statement}"
            lines.append(f"  blocks {b.what} on {b.table}: {b.bound.figure(b.seconds)} ({sql_name(b.mode)}, "
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


def plan_database(ctx: click.Context, panoramax: str | None, scratch_url: str | None, max_lock: float,
               cache_dir: Path | None) -> PlanResult:  # fmt: skip
    from ops.plan import planner
    from ops.settings import cache_dir as cache_dir_of

    current = settings(ctx)
    options = planner.Options(
        panoramax_source=panoramax, scratch_url=scratch_url, max_lock_s=max_lock,
        cache_dir=cache_dir_of(cache_dir), migrations_dir=migrations_dir(ctx),
        connect_timeout_s=current.connect_timeout, lock_wait_s=current.read_lock_timeout,
    )  # fmt: skip
    previous = signal.signal(signal.SIGTERM, _interrupt)  # as Ctrl-C: the scratch database is dropped
    try:
        with could_not_check(), database(ctx, command=plan_command, check_schema=False) as conn:
            return planner.make_plan(conn, current.require_db_url(), options, progress=log.info)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@specified("ops.plan.planner:make_plan", None, writes=False, sql=("plan", "capabilities", "leftovers"))
@click.command("plan")
@click.option(
    "--panoramax",
    "source",
    metavar="SOURCE",
    help="On a Panoramax-managed database: the release to plan, as a version (2.15.1, fetched with pip), a "
    "geovisio wheel or sdist, or a folder of migrations.",
)
@setting_option(SCRATCH_URL, "--scratch-url")
@setting_option(MAX_LOCK, "--max-lock")
@setting_option(CACHE_DIR, "--cache-dir")
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
    result = plan_database(ctx, source, scratch_url, max_lock, cache_dir)
    emit(result.as_dict(), as_json, plan_lines(result), always=result.exit_code != 0)
    if result.exit_code:
        ctx.exit(result.exit_code)
