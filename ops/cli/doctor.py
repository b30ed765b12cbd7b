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

from ops.cli.common import SEQUENCE_ID, could_not_check, database, emit, expand_ids, jit_report, settings
from ops.cli.options import DURATION, dry_run_option, json_option, refresh_cron_option

if TYPE_CHECKING:
    from ops.doctor import DoctorReport, FixPlan

log = logging.getLogger("ops")
CODES_HELP = "A code (SEQ001…) or a prefix (SEQ); repeatable."


@click.command()
@click.option("--only", multiple=True, metavar="CODE", help=f"Run only these checks. {CODES_HELP}")
@click.option("--skip", multiple=True, metavar="CODE", help=f"Do not run these checks. {CODES_HELP}")
@click.option("--sequence", "sequence_ids", multiple=True, type=SEQUENCE_ID,
              help="Only these sequences (and their pictures); repeatable, - reads ids from stdin.")  # fmt: skip
@click.option("--fail-level", type=click.Choice(["info", "warning", "error"]), default="warning", show_default=True,
              help="Exit 1 when a finding is at this severity or above.")  # fmt: skip
@click.option("--stuck-after", type=DURATION, default="24h", show_default=True,
              help="How old a processing state must be to count as stuck.")  # fmt: skip
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
    from ops import jobs

    if dry_run and not fix:
        raise click.UsageError("--dry-run goes with --fix (doctor alone changes nothing)")
    if prometheus and (as_json or fix):
        raise click.UsageError("--prometheus goes alone: neither with --json nor with --fix")
    jobs.validate_cron(refresh_cron)
    only_codes, skip_codes = _codes(only, "--only"), _codes(skip, "--skip")
    ids = expand_ids(sequence_ids) or None
    current = settings(ctx)
    store = None
    if with_storage:
        from ops import storage

        store = storage.from_settings(current)
    deadline_at = time.monotonic() + current.read_deadline if current.read_deadline else None
    options = core.Options(only_codes, skip_codes, ids, stuck_after, refresh_cron, current.read_statement_timeout,
                           store, deadline_at)  # fmt: skip
    started = time.monotonic()
    from ops.errors import CheckUnavailable

    try:
        with could_not_check(), database(ctx, "doctor", check_schema=False) as conn:
            if ids:
                from ops.sequences import check_sequences_exist

                check_sequences_exist(conn, ids)
            report = core.run(conn, options, jit_report=lambda: jit_report(ctx),
                              progress=lambda c: log.debug(f"{c}…"))  # fmt: skip
            plan = core.fix_plan(conn, report, options) if fix else None
    except CheckUnavailable as e:
        if not prometheus:
            raise
        log.error(f"error: {e}")  # every series all the same: the alerts see checks that could not run
        report = core.not_run(options, str(e))
    if prometheus:  # data asked for: printed even with -q
        click.echo(report.prometheus(fail_level, time.monotonic() - started, time.time()), nl=False)
        ctx.exit(report.exit_code(fail_level))
    done = _fix(ctx, plan, dry_run) if plan is not None and not plan.empty else {}
    code = report.exit_code(fail_level)
    if done and not dry_run:  # the state after the fixes: their checks run again
        fixed = frozenset(f.code for f in report.findings if f.state == "found" and f.fixable)
        with database(ctx, "doctor", check_schema=False) as conn:
            after = core.run(conn, dataclasses.replace(options, only=fixed, skip=frozenset()),
                             jit_report=lambda: None)  # fmt: skip
        remaining = {f.code: f for f in after.findings}
        report.findings = [remaining.get(f.code, f) if f.code in fixed else f for f in report.findings]
        code = max(report.exit_code(fail_level), 1 if done.get("failed") else 0)
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


def _fix(ctx: click.Context, plan: FixPlan, dry_run: bool) -> dict[str, Any]:
    """Run the fixes, each by the core function of its command, each in its own session (its lock waits
    bounded by OPS_WRITE_LOCK_TIMEOUT). A fix that fails is reported under ``failed``; the others still run."""
    import psycopg

    from ops import job_admin, refresh, sequences
    from ops.errors import OpsError

    done: dict[str, Any] = {}
    if dry_run:
        return done
    failed: dict[str, str] = {}

    def attempt(key: str, run: Callable[[], Any]) -> None:
        try:
            done[key] = run()
        except (OpsError, psycopg.Error) as e:
            failed[key] = " ".join(str(e).split())

    def reorder() -> Any:
        with database(ctx, "sequences reorder") as conn:  # renumbered in place: no order a user chose changes
            return sequences.reorder(conn, plan.reorder, keep_order=True).as_dict()

    def headings() -> Any:
        with database(ctx, "set-sequences-heading") as conn:
            return sequences.set_headings(conn, plan.headings).as_dict()

    def retry() -> Any:
        with database(ctx, "jobs retry") as conn:
            return job_admin.retry(conn, plan.retry_jobs).as_dict()

    def refreshed() -> Any:
        with database(ctx, "refresh") as conn:
            return [o.as_dict() for o in refresh.refresh(conn)]

    for key, wanted, run in (("reordered", plan.reorder, reorder), ("headings", plan.headings, headings),
                             ("retried", plan.retry_jobs, retry), ("refreshed", plan.refresh, refreshed)):  # fmt: skip
        if wanted:
            attempt(key, run)
    for outcome in done.get("refreshed", []):
        if outcome["state"] == "failed":
            failed["refreshed"] = f"{outcome['view']}: {outcome['message']}"
    if failed:
        done["failed"] = failed
    return done


def _lines(report: DoctorReport, plan: FixPlan | None, dry_run: bool, done: dict[str, Any]) -> list[str]:
    lines = []
    for f in report.findings:
        if f.state == "clean":
            continue
        head = f"{f.code} {f.severity.upper():<7}"
        if f.state == "not applicable":
            lines.append(f"{f.code} -       not applicable: {f.title} ({f.detail})")
            continue
        if f.state == "failed":
            lines.append(f"{f.code} FAILED  could not run: {f.title}: {f.detail}")
            continue
        lines.append(f"{head} {f.count:,} {f.title}" + (f" ({f.detail})" if f.detail else ""))
        if f.ids:
            lines.append(f"        first: {', '.join(f.ids)}")
        lines.append(f"        hint: {f.hint}")
        if f.fix:
            lines.append(f"        fix: {f.fix}")
    found = [f for f in report.findings if f.state == "found"]
    clean = sum(1 for f in report.findings if f.state == "clean")
    lines.append(f"doctor: {len(found)} findings, {clean} checks clean ({report.kind} database)")
    if plan is not None:
        verb = "would" if dry_run else "did"
        lines.append(f"fix ({verb}): reorder {len(plan.reorder)} sequences, set headings of {len(plan.headings)}, "
                     f"retry {len(plan.retry_jobs)} jobs, refresh: {'yes' if plan.refresh else 'no'}")  # fmt: skip
    return lines
