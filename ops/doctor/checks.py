"""The checks of ``ops doctor``, one row each (``CHECKS``): code, severity, what is wrong, why, the fix, how it
runs (its statement of ``sql/queries/doctor.sql``), and for --fix its action and the statement of every id it
covers. Adding a check is a row here and its statement there; docs/commands.md documents the codes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from ops import db, jit, queries, refresh, sequences, storage_check, worker
from ops.doctor.findings import SHOWN, CheckDef, Finding, Fix, Options, Runner, Severity
from ops.doctor.findings import FixSql as _sql
from ops.schema import capabilities, kind, status
from ops.schema.needs import Needs

FILE = "doctor"
RANKS = "reorder_ranks"  # the intended order of a sequence (ops.sequences)
ORDER_BATCH = 1000
XID_WARNING = 1_000_000_000
IDLE_AFTER = timedelta(minutes=10)  # a session idle in a transaction for longer holds its locks for nothing


def _counted(statement: str) -> Runner:
    """A check whose statement returns (count, first ids[, detail])."""

    def run(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
        row = db.one(conn, queries.statement(FILE, statement), options.params())
        count, ids, detail = (*row, "")[:3]
        return [check.finding(int(count or 0), list(ids or []), str(detail or ""))]

    return run


def _every_id(statement: str) -> Callable[[psycopg.Connection, Options], list[UUID]]:
    """Every id of a counted check: its statement with no limit on the ids shown."""

    def ids(conn: psycopg.Connection, options: Options) -> list[UUID]:
        return list(db.one(conn, queries.statement(FILE, statement), {**options.params(), "shown": None})[1] or [])

    return ids


def _owner_order(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    """SEQ006: the sequences with an order chosen by their owner, compared with that order (a batch at a time)."""
    columns = capabilities.optional_columns(conn)
    owner_chosen = queries.composed(RANKS, "owner_chosen", columns)
    chosen = [r[0] for r in conn.execute(owner_chosen, options.params()).fetchall()]
    count, ids = 0, list[UUID]()
    statement = queries.composed(RANKS, "contradicting", columns, ordered="ordered")
    for start in range(0, len(chosen), ORDER_BATCH):
        params = {**sequences.order_params(conn, chosen[start : start + ORDER_BATCH], columns), "shown": SHOWN}
        n, first = db.one(conn, statement, params)
        count, ids = count + int(n), ids + list(first or [])
    return [check.finding(count, sorted(ids)[:SHOWN])]


def _broken(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    """PIC003: one finding per last error."""
    rows = conn.execute(queries.statement(FILE, "pic_broken"), options.params()).fetchall()
    if not rows:
        return [check.finding(0, [])]
    return [check.finding(int(n), list(job_ids or []), f"last error: {reason}") for reason, n, job_ids in rows]


def _broken_jobs(conn: psycopg.Connection, options: Options) -> list[UUID]:
    rows = conn.execute(queries.statement(FILE, "pic_broken"), {**options.params(), "shown": None}).fetchall()
    return [i for _reason, _n, job_ids in rows for i in (job_ids or [])]


def _map(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    """The last refresh against the schedule (ops's views, or Panoramax's grid with its expired cells)."""
    now: datetime = db.scalar(conn, "SELECT now()")
    last = refresh.last_refresh(conn)
    due = worker.next_refresh(options.refresh_cron, last, now)
    detail = f"last refresh {last:%Y-%m-%d %H:%M:%S} UTC" if last else "never refreshed"
    if refresh.has_expiring_grid(conn):
        waiting, oldest = db.one(conn, queries.statement(FILE, "grid_expired"))
        detail += f"; {waiting:,} grid cells waiting" + (f" since {oldest:%Y-%m-%d %H:%M:%S}" if oldest else "")
    overdue = last is None or due < now
    return [check.finding(1 if overdue else 0, [], f"{detail}; cron {options.refresh_cron}")]


def _rows(statement: str, keep: Callable[[tuple[Any, ...]], bool] = lambda r: True) -> Runner:
    """A check of the database itself: the rows the statement returns that ``keep`` keeps, by their first column."""

    def run(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
        rows = conn.execute(queries.statement(FILE, statement), {"idle_after": IDLE_AFTER}).fetchall()
        found = [str(r[0]) for r in rows if keep(tuple(r))]
        return [check.finding(len(found), found)]

    return run


def _old_xids(row: tuple[Any, ...]) -> bool:
    return int(row[1]) > XID_WARNING  # read at run time


def _schema(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    state = status.migration_status(conn, needs=options.needs)
    problems = [] if state.up_to_date else [state.problems()]
    return [check.finding(len(problems), problems)]


def _jit(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    """DB005: what JIT costs the geometry function in a session with the server's own JIT setting."""
    if not kind.detect(conn).panoramax or options.server_session is None:
        return check.not_applicable("Panoramax's API sessions only (ops's run without JIT)")
    with options.server_session() as session:
        report = jit.measure(session)
    if report is None:
        return check.not_applicable("no compute_sequence_geom in this database")
    timing = (f"{report.ms_per_call_with_jit} ms per call with JIT, {report.ms_per_call_without_jit} ms without"
              if report.ms_per_call_with_jit is not None else "jit = " + ("on" if report.server_jit else "off"))  # fmt: skip
    finding = check.finding(1 if report.costly else 0, [], f"{report.function}(): {timing}")
    finding.fix = f"{report.fix}  (or raise jit_above_cost; ops changes no server setting)" if report.costly else ""
    return [finding]


def _location(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    """STO001: the storage is the instance's (what every deleting command proves before it deletes)."""
    assert options.storage is not None
    problem = storage_check.location_problem(conn, options.storage)
    return [check.finding(1 if problem else 0, [], problem or "")]


def _writable(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    assert options.storage is not None
    found = storage_check.unwritable(conn, options.storage)
    if found is None:
        return check.not_applicable("on S3 only a deletion can tell: a refused one fails its job and exits 1")
    return [check.finding(len(found), found)]


def _default_account(conn: psycopg.Connection, options: Options, check: CheckDef) -> list[Finding]:
    defaults, tokens, ids = db.one(conn, queries.statement(FILE, "acc_default"))
    if check.code == "ACC001":
        return [check.finding(0 if defaults == 1 else 1, list(ids or []), f"{defaults} default accounts")]
    return [check.finding(1 if defaults == 1 and not tokens else 0, list(ids or []))]


_SEQ = Needs({"sequences": ("id", "status", "geom", "bbox"), "sequences_pictures": ("seq_id", "rank", "pic_id")})
_PIC = Needs({"pictures": ("id", "status", "updated_at"), "job_queue": ("picture_id", "task")})
_STORAGE = Needs({"pictures": ("id", "status")})
INFO, WARNING, ERROR = Severity.INFO, Severity.WARNING, Severity.ERROR
CHECKS: tuple[CheckDef, ...] = (
    CheckDef("SEQ001", WARNING, "sequences whose geometry differs from their pictures in rank order",
             "the map draws them where their pictures are not (an edit, or an interrupted update)",
             "ops sequences reorder {ids}", _counted("seq_geometry"), Fix.REORDER, _every_id("seq_geometry"),
             _SEQ | Needs(functions=("compute_sequence_geom",)), narrowed=True),
    CheckDef("SEQ002", WARNING, "sequences whose bbox, capture times or picture count differ from their pictures",
             "search and statistics read these fields", "ops sequences reorder {ids}", _counted("seq_fields"),
             Fix.REORDER, _every_id("seq_fields"),
             _SEQ | Needs({"sequences": ("min_picture_ts", "max_picture_ts", "nb_pictures")}), narrowed=True),
    CheckDef("SEQ003", INFO, "sequences whose ranks have gaps or do not start at 1",
             "left by deleted pictures; harmless for Panoramax. --fix renumbers them in their current order",
             "ops sequences reorder {ids}", _counted("seq_ranks"), Fix.REORDER, _every_id("seq_ranks"), _SEQ,
             narrowed=True),
    CheckDef("SEQ004", WARNING, "ready sequences without any picture", "an empty sequence listed as ready",
             "ops cleanup {ids} --database  (deletes the sequences: run it yourself)", _counted("seq_empty"),
             needs=_SEQ, narrowed=True),
    CheckDef("SEQ005", INFO, "sequences that move holding pictures without heading",
             "a heading is computed from the movement", "ops set-sequences-heading {ids}", _counted("seq_headings"),
             Fix.HEADINGS, _every_id("seq_headings"), _SEQ | Needs({"pictures": ("heading",)}), narrowed=True),
    CheckDef("SEQ006", INFO, "sequences whose order is not the one their owner chose",
             "their owner sorted them through Panoramax (a collection sort, an upload set's sort method) and the "
             "pictures are in another order: the operator decides; doctor never re-sorts them",
             "ops sequences reorder {ids}  (applies the owner's choice)", _owner_order, needs=_SEQ, narrowed=True),
    CheckDef("PIC001", ERROR, "pictures stuck in a processing status with no job queued",
             "nothing will ever finish them (a worker that died, a queue emptied by hand)",
             _sql("pic001"), _counted("pic_stuck"), needs=_PIC, narrowed=True),
    CheckDef("PIC002", ERROR, "pictures waiting for deletion with no delete job queued",
             "they and their files will never go", _sql("pic002"), _counted("pic_waiting_delete"),
             needs=_PIC | Needs({"job_queue": ("picture_to_delete_id",)}), narrowed=True),
    CheckDef("PIC003", WARNING, "broken pictures (ids: their last failed jobs)",
             "their last error is below; retry once its cause is fixed", "ops jobs retry {ids}", _broken, Fix.RETRY,
             _broken_jobs, Needs({"pictures": ("id", "status", "preparing_status"),
                                  "job_history": ("picture_id", "job_id", "error")}), narrowed=True),
    CheckDef("PIC004", WARNING, "pictures in no sequence, their upload finished", "nothing will ever show them",
             _sql("pic004", "(deletes: their files become orphans, see ops storage orphans)"),
             _counted("pic_unsequenced"),
             needs=Needs({"pictures": ("id", "inserted_at", "upload_set_id"), "upload_sets": ("completed", "dispatched")})),
    CheckDef("JOB001", WARNING, "queued jobs whose target is gone", "they fail or do nothing, forever",
             _sql("job001"), _counted("job_orphan"),
             needs=Needs({"job_queue": ("id", "picture_id", "sequence_id", "upload_set_id")})),
    CheckDef("UPL001", WARNING, "upload sets completed but never dispatched", "their pictures never get a sequence",
             _sql("upl001"), _counted("upload_undispatched"),
             needs=Needs({"upload_sets": ("id", "completed", "dispatched", "created_at"), "job_queue": ("upload_set_id",)})),
    CheckDef("UPL002", INFO, "upload files naming pictures that are gone (ids: the pictures)",
             "Panoramax's upload bookkeeping keeps them", _sql("upl002"), _counted("upload_files_lost"),
             needs=Needs({"files": ("picture_id",)})),
    CheckDef("MAP001", WARNING, "the map is not refreshed on schedule",
             "new, moved and deleted pictures do not show on the map", "ops refresh", _map, Fix.REFRESH),
    CheckDef("DB001", ERROR, "invalid indexes", "a failed CREATE INDEX CONCURRENTLY: writes pay for it, reads "
             "never use it", _sql("db001"), _rows("db_invalid_indexes")),
    CheckDef("DB002", ERROR, "the schema is not what the commands need", "migrations pending, modified or missing",
             "ops db upgrade  (Panoramax-managed: Panoramax's own flask db upgrade)", _schema),
    CheckDef("DB003", WARNING, "transaction IDs old: autovacuum is not keeping up",
             f"past about 2 billion PostgreSQL stops writes; warned at {XID_WARNING:,}", _sql("db003"),
             _rows("db_xid_age", _old_xids)),
    CheckDef("DB004", ERROR, "sessions idle in a transaction for more than 10 minutes, holding locks",
             "they block every migration and cleanup", _sql("db004"), _rows("db_idle_in_transaction")),
    CheckDef("DB005", WARNING, "the server JIT-compiles the per-sequence geometry function",
             "every call from Panoramax's API pays the compilation", "{ids}", _jit),
    CheckDef("STO001", ERROR, "the storage holds none of a sample of ready pictures' originals",
             "a volume that did not mount, an empty bucket or a wrong prefix: deleting commands refuse to run "
             "(checked with --storage)", "check FS_URL (or FS_*_URL) and the mounts", _location, needs=_STORAGE,
             storage=True),
    CheckDef("STO002", ERROR, "folders of pictures' files this user may not delete from (ids: the folders)",
             "every deletion there fails: run ops as the files' owner, as Panoramax's image does (uid 1000; "
             "checked with --storage, on a local disk)", "chown the storage to the user ops runs as, or run ops "
             "as the files' owner (the image's OPS_UID/OPS_GID build arguments)", _writable, needs=_STORAGE,
             storage=True),
    CheckDef("ACC001", ERROR, "not exactly one default account",
             "anonymous uploads and default-account-tokens need one",
             _sql("acc001", "(or create one: ops user 'Default account' --create, then set is_default)"),
             _default_account),
    CheckDef("ACC002", ERROR, "the default account has no token", "ops default-account-tokens get fails",
             _sql("acc002"), _default_account),
)  # fmt: skip
CODES = {c.code: c for c in CHECKS}
