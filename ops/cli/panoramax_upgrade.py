"""``ops db upgrade --panoramax SOURCE``: the plan first, then Panoramax's migrations applied by
``ops.schema.panoramax_upgrade``."""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING

import click

from ops.cli.common import database, emit, say, settings

if TYPE_CHECKING:
    from ops.plan.planner import Plan

log = logging.getLogger("ops")


def handled_here(plan: Plan) -> tuple[dict[str, list[str]], list[str]]:
    """What ops does itself of the plan's warnings (the ANALYZE of columns an earlier migration added: after
    that migration, the tables to analyze), and the warnings it does not handle (an operator's call)."""
    analyze: dict[str, set[str]] = {}
    unanalyzed_at = set()
    for m in plan.migrations:
        for sp in m.statements:
            for u in sp.unanalyzed:
                analyze.setdefault(u.added_by.split(" #")[0], set()).add(u.table)
                unanalyzed_at.add((m.id, sp.trace.number))
    others = [f"{w.migration}: {w.message}" for w in plan.warnings if (w.migration, w.statement) not in unanalyzed_at]
    return {mid: sorted(tables) for mid, tables in analyze.items()}, others


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(ctx: click.Context, source: str, *, accept_warnings: bool, dry_run: bool, lock_timeout_s: float,
        deadline_s: float, as_json: bool) -> None:  # fmt: skip
    from ops.cli.plan import plan_database, plan_lines
    from ops.config import default_cache_dir, scratch_url
    from ops.errors import OpsError, UsageError
    from ops.plan import source as plan_source
    from ops.schema import kind
    from ops.schema import panoramax_upgrade as core

    url = settings(ctx).require_db_url()
    with database(ctx, "db upgrade", check_schema=False, read_only=True) as conn:
        detected = kind.detect(conn)
    if not detected.panoramax:
        raise UsageError(f"--panoramax upgrades a database built by Panoramax; this is a {detected.describe()}: "
                         "ops db upgrade (without --panoramax) upgrades it (nothing was changed)")  # fmt: skip
    folder = plan_source.resolve(source, default_cache_dir())
    pending = core.pending(url, folder)
    progress = (lambda line: click.echo(line, err=True)) if as_json else say
    if not pending:
        emit(core.Result([]).as_dict(), as_json, ["nothing to apply: Panoramax's history holds every migration"])
        return
    core.loadable(folder, pending)
    options = core.Options(lock_timeout_s=lock_timeout_s, deadline_s=deadline_s)
    try:
        plan = plan_database(ctx, str(folder), scratch_url(), lock_timeout_s, None)
    except OpsError as e:
        if not accept_warnings:
            raise UsageError(f"no plan could be made ({e}): nothing was applied; --accept-warnings upgrades "
                             "without one") from None  # fmt: skip
        progress(f"warning: no plan ({e}); upgrading without one (--accept-warnings)")
        plan = None
    others: list[str] = []
    if plan is not None:
        options.analyze_after, others = handled_here(plan)
        options.estimates = {m.id: m.seconds for m in plan.migrations}
        if not as_json:
            for line in plan_lines(plan):
                say(line)
        if plan.errors:
            raise UsageError(f"the plan failed ({'; '.join(plan.errors)}): nothing was applied")
        for mid, tables in options.analyze_after.items():
            progress(f"ops runs ANALYZE {', '.join(tables)} once {mid} is applied (the plan's warning on them)")
    if others and not accept_warnings:
        raise UsageError(f"the plan warns: {others[0]}" + (f" (and {len(others) - 1} more)" if len(others) > 1 else "")
                         + "; nothing was applied: --accept-warnings upgrades anyway")  # fmt: skip
    if dry_run:
        emit({"would_apply": pending, "analyze_after": options.analyze_after, "warnings": others}, as_json,
             [f"would apply {mid}" for mid in pending])  # fmt: skip
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)  # as Ctrl-C: the migration in progress rolls back
    try:
        result = core.upgrade(url, folder, options, report=progress)
    except core.UpgradeStopped as stopped:
        if as_json:
            emit(stopped.result.as_dict(), True, [])
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    emit(result.as_dict(), as_json, [f"Panoramax's schema is up to date ({len(result.applied)} applied)"])
