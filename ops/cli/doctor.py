"""``ops doctor``: what is wrong with the instance, and the command that fixes each finding."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from ops.cli.common import SEQUENCE_ID, could_not_check, database, emit, expand_ids, server_session, settings
from ops.cli.options import dry_run_option, json_option, refresh_cron_option, setting_option
from ops.cli.prometheus import textfile
from ops.cli.registry import specified
from ops.settings import STUCK_AFTER

if TYPE_CHECKING:
    import psycopg

    from ops.doctor import DoctorReport, Fix, FixPlan

log = logging.getLogger("ops")
CODES_HELP = "A code (SEQ001…) or a prefix (SEQ); repeatable."


# writes: --fix does, each fix in a session of its own command; the checks run in read-only sessions
@specified(
    "ops.doctor:run",
    None,
    writes=True,
    sql=(
        "doctor",
        "doctor_fixes",
        "bookkeeping",
        "capabilities",
        "ddl",
        "sequence_targets",
        "reorder_ranks",
        "panoramax_refresh",
        "headings",
        "jobs_view",
        "sequence_derived",
    ),  # --fix runs the last three
)
@click.command()
@click.option("--only", multiple=True, metavar="CODE", help=f"Run only these checks. {CODES_HELP}")
@click.option("--skip", multiple=True, metavar="CODE", help=f"Do not run these checks. {CODES_HELP}")
@click.option("--sequence", "sequence_ids", multiple=True, type=SEQUENCE_ID,
              help="Only these sequences (and their pictures); repeatable, - reads ids from stdin.")  # fmt: skip
@click.option("--fail-level", type=click.Choice(["info", "warning", "error"]), default="warning", show_default=True,
              help="Exit 1 when a finding is at this severity or above.")  # fmt: skip
@setting_option(STUCK_AFTER, "--stuck-after")
@refresh_cron_option
@click.option("--fix", is_flag=True, help="Run the ops commands that repair the fixable findings (never deleting).")
@dry_run_option
@json_option
@click.option("--prometheus", is_flag=True, help="Print every check's count in node_exporter's textfile format.")
@click.option("--storage", "with_storage", is_flag=True,
              help="Also check the storage (STO): a sample of pictures' originals where the layout says, and the "
              "folders this user may delete from. Bounded by the S3 timeouts.")  # fmt: skip
@click.pass_context
def doctor(
    ctx: click.Context, only: tuple[str, ...], skip: tuple[str, ...], sequence_ids: tuple[UUID | str, ...],
    fail_level: str, stuck_after: timedelta, refresh_cron: str, fix: bool, dry_run: bool, as_json: bool,
    prometheus: bool, with_storage: bool,
) -> None:  # fmt: skip
    """Find what is wrong with the instance in one read-only pass: stale sequences, stuck pictures, lost jobs,
    a map not refreshed, invalid indexes, old transaction IDs, sessions holding locks, the default account.

    Each finding has a stable code, a severity, a count, the first ids and the fix: the ops command with
    those ids, or the SQL to run where no command exists. Exit 0 when nothing reaches --fail-level, 1 when
    something does, 2 when a check could not run. --fix runs the fixable ones (reorder, headings, refresh,
    jobs retry) on every id found; it never deletes.

    \b
    ops doctor
    ops doctor --json --fail-level error
    ops doctor --only SEQ --sequence 0d5ac4a4-6d4c-4a0b-8a57-6ddc5a5e8c3e
    ops doctor --fix --dry-run
    ops doctor --storage --only STO
    ops doctor --prometheus > /var/lib/node_exporter/ops_doctor.prom
    """
    from ops import doctor as core
    from ops import worker
    from ops.cli import specs
    from ops.commands import needs_by_command

    if dry_run and not fix:
        raise click.UsageError("--dry-run goes with --fix (doctor alone changes nothing)")
    if prometheus and (as_json or fix):
        raise click.UsageError("--prometheus goes alone: neither with --json nor with --fix")
    worker.validate_cron(refresh_cron)
    only_codes, skip_codes = _codes(only, "--only"), _codes(skip, "--skip")
    ids = expand_ids(sequence_ids) or None
    current = settings(ctx)
    store = None
    if with_storage:
        from ops import storage

        store = storage.from_settings(current)
    deadline_at = time.monotonic() + current.read_deadline if current.read_deadline else None
    options = core.Options(only_codes, skip_codes, ids, stuck_after, refresh_cron, current.read_statement_timeout,
                           store, deadline_at, needs_by_command(specs()), lambda: server_session(ctx))  # fmt: skip
    level = core.Severity(fail_level)
    started = time.monotonic()
    from ops.errors import CheckUnavailable

    try:
        with could_not_check(), database(ctx, check_schema=False, read_only=True) as conn:
            if ids:
                from ops.sequences import check_sequences_exist

                check_sequences_exist(conn, ids)
            report = core.run(conn, options, progress=lambda c: log.debug(f"{c}…"))
            plan = core.fix_plan(conn, report, options) if fix else None
    except CheckUnavailable as e:
        if not prometheus:
            raise
        log.error(f"error: {e}")  # every series all the same: the alerts see checks that could not run
        report = core.not_run(options, str(e))
    if prometheus:  # data asked for: printed even with -q
        series = report.series(level, time.monotonic() - started, time.time())
        families = {name: (text.format(fail_level=level), label) for name, (text, label) in core.FAMILIES.items()}
        click.echo(textfile(families, series), nl=False)
        ctx.exit(report.exit_code(level))
    done = _fix(ctx, plan, dry_run) if plan is not None and not plan.empty else {}
    code = report.exit_code(level)
    if done and not dry_run:  # the state after the fixes: their checks run again
        fixed = frozenset(f.code for f in report.findings if f.state == core.State.FOUND and f.fixable)
        with database(ctx, check_schema=False, read_only=True) as conn:
            after = core.run(conn, dataclasses.replace(options, only=fixed, skip=frozenset()))
        remaining = {f.code: f for f in after.findings}
        report.findings = [remaining.get(f.code, f) if f.code in fixed else f for f in report.findings]
        code = max(report.exit_code(level), 1 if done.get("failed") else 0)
    emit({**report.as_dict(), "fix": {"dry_run": dry_run, **plan.as_dict(), **done} if plan else None}, as_json,
         _lines(report, plan, dry_run, done), always=code != 0)  # fmt: skip
    for step, why in done.get("failed", {}).items():
        log.error(f"error: doctor --fix: {step} failed: {why}")
    ctx.exit(code)


def _codes(values: tuple[str, ...], option: str) -> frozenset[str]:
    from ops.doctor import CODES

    chosen = set()
    for value in values:
        matching = {code for code in CODES if code == value.upper() or code.startswith(value.upper())}
        if not matching or not value:
            raise click.BadParameter(f"{value!r} is no check code (codes: {', '.join(CODES)})", param_hint=option)
        chosen |= matching
    return frozenset(chosen)


def _fixes() -> dict[Fix, tuple[str, click.Command, Callable[[psycopg.Connection, list[UUID]], Any], str]]:
    """Each fix action: its key in --json, the command whose spec its session takes, how it runs (that
    command's core function) and how the summary says it."""
    from ops import jobs, refresh, sequences
    from ops.cli import db as db_commands
    from ops.cli import jobs as job_commands
    from ops.cli import sequences as sequence_commands
    from ops.doctor import Fix

    return {  # a reorder renumbers in place: no order a user chose changes
        Fix.REORDER: ("reordered", sequence_commands.reorder,
                      lambda c, ids: sequences.reorder(c, ids, keep_order=True).as_dict(), "reorder {n} sequences"),
        Fix.HEADINGS: ("headings", sequence_commands.set_sequences_heading,
                       lambda c, ids: sequences.set_headings(c, ids).as_dict(), "set headings of {n}"),
        Fix.RETRY: ("retried", job_commands.retry, lambda c, ids: jobs.retry(c, ids).as_dict(), "retry {n} jobs"),
        Fix.REFRESH: ("refreshed", db_commands.refresh, lambda c, _ids: [o.as_dict() for o in refresh.refresh(c)],
                      "refresh: {yes}"),
    }  # fmt: skip


def _fix(ctx: click.Context, plan: FixPlan, dry_run: bool) -> dict[str, Any]:
    """Run the fixes, each by the core function of its command, each in its own session (its lock waits
    bounded by OPS_WRITE_LOCK_TIMEOUT). A fix that fails is reported under ``failed``; the others still run."""
    import psycopg

    from ops.errors import OpsError

    done: dict[str, Any] = {}
    if dry_run:
        return done
    failed: dict[str, str] = {}
    for action, (key, command, run, _said) in _fixes().items():
        if action not in plan.actions:
            continue
        try:
            with database(ctx, command=command) as conn:
                done[key] = run(conn, plan.actions[action])
        except (OpsError, psycopg.Error) as e:
            failed[key] = " ".join(str(e).split())
    for outcome in done.get("refreshed", []):
        if outcome["state"] == "failed":
            failed["refreshed"] = f"{outcome['view']}: {outcome['message']}"
    if failed:
        done["failed"] = failed
    return done


def _lines(report: DoctorReport, plan: FixPlan | None, dry_run: bool, done: dict[str, Any]) -> list[str]:
    from ops.doctor import State

    lines = []
    for f in report.findings:
        if f.state == State.CLEAN:
            continue
        head = f"{f.code} {f.severity.upper():<7}"
        if f.state == State.NOT_APPLICABLE:
            lines.append(f"{f.code} -       not applicable: {f.title} ({f.detail})")
            continue
        if f.state == State.FAILED:
            lines.append(f"{f.code} FAILED  could not run: {f.title}: {f.detail}")
            continue
        lines.append(f"{head} {f.count:,} {f.title}" + (f" ({f.detail})" if f.detail else ""))
        if f.ids:
            lines.append(f"        first: {', '.join(f.ids)}")
        lines.append(f"        hint: {f.hint}")
        if f.fix:
            lines.append(f"        fix: {f.fix}")
    found = [f for f in report.findings if f.state == State.FOUND]
    clean = sum(1 for f in report.findings if f.state == State.CLEAN)
    lines.append(f"doctor: {len(found)} findings, {clean} checks clean ({report.kind} database)")
    if plan is not None:
        said = [text.format(n=len(plan.actions.get(action, [])), yes="yes" if action in plan.actions else "no")
                for action, (_key, _command, _run, text) in _fixes().items()]  # fmt: skip
        lines.append(f"fix ({'would' if dry_run else 'did'}): {', '.join(said)}")
    return lines


COMMANDS = (doctor,)
