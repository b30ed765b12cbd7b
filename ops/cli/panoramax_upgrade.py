"""``ops db upgrade --panoramax SOURCE``: the plan first, then Panoramax's migrations applied by
``ops.schema.panoramax_upgrade``; ``ops db rollback --panoramax SOURCE``, the same way back."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ops.cli.common import database, emit, progress_lines, say, settings

if TYPE_CHECKING:
    from ops.plan.records import Plan

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


LOCK_TIMEOUT_S = 3.0  # a statement's wait for a lock, unless --ddl-lock-timeout says


def _lock_timeout_s(ctx: click.Context) -> float:
    """--ddl-lock-timeout when the operator gave it, else the short wait an upgrade of a live database wants."""
    given = ctx.get_parameter_source("ddl_lock_timeout") != click.core.ParameterSource.DEFAULT
    return float(ctx.params["ddl_lock_timeout"]) if given else LOCK_TIMEOUT_S


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _panoramax_database(ctx: click.Context, command: str, source: str) -> tuple[str, Path]:
    """The database's URL, refused unless Panoramax built it, and the folder of the release's migrations."""
    from ops.errors import UsageError
    from ops.plan import source as plan_source
    from ops.schema import kind
    from ops.settings import cache_dir

    url = settings(ctx).require_db_url()
    with database(ctx, check_schema=False, read_only=True) as conn:
        detected = kind.detect(conn)
    if not detected.panoramax:
        raise UsageError(f"--panoramax works on a database built by Panoramax; this is a {detected.describe()}: "
                         f"ops {command} (without --panoramax) works on it (nothing was changed)")  # fmt: skip
    return url, plan_source.resolve(source, cache_dir())


def _stoppable(work: Callable[[], Any], as_json: bool) -> Any:
    """``work`` with SIGTERM as Ctrl-C (the migration in progress rolls back); what it did, in --json too,
    when it stops."""
    from ops.schema import panoramax_upgrade as core

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return work()
    except core.UpgradeStopped as stopped:
        if as_json:
            emit(stopped.result.as_dict(), True, [])
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_rollback(ctx: click.Context, source: str, *, everything: bool, yes: bool, dry_run: bool,
                 deadline_s: float, as_json: bool) -> None:  # fmt: skip
    """``ops db rollback --panoramax``: what ``flask db rollback [--all]`` undoes, the same way, with the lock
    timeout, retries, deadline and stop of an upgrade."""
    from ops.cli.common import confirm_or_refuse
    from ops.schema import panoramax_upgrade as core

    url, folder = _panoramax_database(ctx, "db rollback", source)
    todo = core.to_roll_back(url, folder, everything)
    progress = progress_lines(ctx, as_json)
    if dry_run or not todo:
        lines = [f"would roll back {mid}" for mid in todo] or ["nothing to roll back: no migration of it is applied"]
        emit({"would_roll_back": todo}, as_json, lines)
        return
    if everything and not yes:
        confirm_or_refuse(
            f"Roll back ALL {len(todo)} of Panoramax's migrations? Every table of Panoramax and its data will be deleted",
            "--all deletes every table of Panoramax and its data; add --yes to confirm",
        )
    options = core.Options(lock_timeout_s=_lock_timeout_s(ctx), deadline_s=deadline_s)
    result = _stoppable(lambda: core.rollback(url, folder, everything, options, report=progress), as_json)
    data = result.as_dict()
    emit({"rolled_back": data["applied"], "stopped": data["stopped"]}, as_json,
         [f"rolled back {len(result.applied)} of Panoramax's migrations"])  # fmt: skip


def run(ctx: click.Context, source: str, *, accept_warnings: bool, dry_run: bool, deadline_s: float,
        as_json: bool) -> None:  # fmt: skip
    from ops.cli.plan import plan_database, plan_lines
    from ops.errors import OpsError, UsageError
    from ops.schema import panoramax_upgrade as core
    from ops.settings import SCRATCH_URL

    url, folder = _panoramax_database(ctx, "db upgrade", source)
    pending = core.pending(url, folder)
    progress = progress_lines(ctx, as_json)
    if not pending:
        emit(core.Result([]).as_dict(), as_json, ["nothing to apply: Panoramax's history holds every migration"])
        return
    core.loadable(folder, pending)
    lock_timeout_s = _lock_timeout_s(ctx)
    options = core.Options(lock_timeout_s=lock_timeout_s, deadline_s=deadline_s)
    try:
        plan = plan_database(ctx, str(folder), SCRATCH_URL.from_environment(), lock_timeout_s, None)
    except OpsError as e:
        if not accept_warnings:
            raise UsageError(f"no plan could be made ({e}): nothing was applied; --accept-warnings upgrades "
                             "without one") from None  # fmt: skip
        progress(f"warning: no plan ({e}); upgrading without one (--accept-warnings)")
        plan = None
    others: list[str] = []
    if plan is not None:
        options.analyze_after, others = handled_here(plan)
        options.estimates = {m.id: m.bound.figure(m.seconds) for m in plan.migrations}
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
    result = _stoppable(lambda: core.upgrade(url, folder, options, report=progress), as_json)
    emit(result.as_dict(), as_json, [f"Panoramax's schema is up to date ({len(result.applied)} applied)"])
