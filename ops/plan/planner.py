"""``ops db plan``: before an upgrade runs, what it will lock on this database, what that blocks, and for
how long.

1. Which migrations: ops's pending ones on an ops-built database; on a Panoramax-managed one, those of a
   Panoramax release not in ``_yoyo_migration`` (``ops.plan.source``).
2. The trace: each is replayed on a scratch copy of this database's schema (``ops.plan.scratch``,
   ``ops.plan.trace``): the true lock modes, rewrites and validations, statement by statement.
3. The estimate: production's sizes and ``EXPLAIN``, and this server's measured rates
   (``ops.plan.estimate``). A lock taken in a migration's transaction is held until its commit: through
   every later statement of the migration.
4. The verdict: a warning for each lock that blocks writes on a table of production for longer than
   ``max_lock``, with the safe form of the statements that make it long.

Production is only read: catalogs, statistics, ``_yoyo_migration`` and ``EXPLAIN`` in read-only
transactions, and ``pg_dump --schema-only``. The plan's records are ``ops.plan.records``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from ops import queries
from ops.errors import UsageError
from ops.plan import estimate as est
from ops.plan import scratch, source, trace
from ops.plan.bound import Bound, format_seconds
from ops.plan.estimate import Estimate, Rates
from ops.plan.records import Blocked, MigrationPlan, Plan, PlanWarning, StatementPlan, Unanalyzed, bound_of
from ops.plan.trace import NOTHING, READS_AND_WRITES, WRITES, MigrationTrace
from ops.schema import kind
from ops.schema.leftovers import describe, interrupted_indexes


def _blocked(m: MigrationPlan) -> list[Blocked]:
    """Each table of production the migration blocks, for its longest class (reads and writes, or writes)."""
    found: dict[tuple[str, str], Blocked] = {}
    last = len(m.statements)
    for index, sp in enumerate(m.statements):
        for lock in sp.trace.locks:
            what = lock.blocks
            if what == NOTHING or lock.production is None:
                continue
            through = m.statements[index:] if m.transactional else [sp]
            key = (lock.production, what)
            if key in found and m.transactional:
                continue  # taken earlier in the same transaction: already held to the commit
            b = Blocked(lock.production, what, lock.mode, sp.trace.number, last if m.transactional else sp.trace.number,
                        sum(s.estimate.seconds for s in through), bound_of([s.estimate for s in through]))  # fmt: skip
            if key not in found or b.seconds > found[key].seconds:
                found[key] = b
    blocked = sorted(found.values(), key=lambda b: (-b.seconds, b.table))
    # a table blocked for reads and writes is also blocked for writes: show the longer of the two only
    out: list[Blocked] = []
    for b in blocked:
        if b.what == WRITES and any(o.table == b.table and o.what == READS_AND_WRITES and o.seconds >= b.seconds
                                    for o in blocked):  # fmt: skip
            continue
        out.append(b)
    return out


def _fixes(sp: StatementPlan) -> list[str]:
    """The safe form of a statement that keeps a lock long, where one exists."""
    t, fixes = sp.trace, []
    if t.effects.indexes_built:
        fixes.append("build the index with CREATE INDEX CONCURRENTLY, in a migration of its own marked -- transactional: false "
                     "(writes go on while it builds)")  # fmt: skip
    if any(not what.startswith("NOT NULL") for _, what in t.effects.validated):
        fixes.append("ADD CONSTRAINT … NOT VALID, then ALTER TABLE … VALIDATE CONSTRAINT in a later migration "
                     "(validation takes SHARE UPDATE EXCLUSIVE: reads and writes go on)")  # fmt: skip
    if any(what.startswith("NOT NULL") for _, what in t.effects.validated):
        fixes.append("a CHECK (column IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (no scan since "
                     "PostgreSQL 12)")  # fmt: skip
    if [r for r in t.effects.rewritten if r.production and not r.method]:
        fixes.append("a new column filled in batches, then swapped, instead of a rewrite of the table")
    if t.verb in ("UPDATE", "DELETE"):
        fixes.append(f"a batched {t.verb} (by ranges of id, one transaction each) in a migration of its own, "
                     "outside the transaction that holds the lock")  # fmt: skip
    if sp.estimate.bound == Bound.AT_LEAST:
        fixes.append("run the long query before the lock is taken (in an earlier migration), so the lock is "
                     "held only for the swap")  # fmt: skip
    return fixes


FUNCTION_NAME = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(?:\w+\.)?(\w+)", re.IGNORECASE)


def _mark_unanalyzed(migrations: list[MigrationPlan], facts: dict[str, est.Facts]) -> None:
    """Mark each query that names a column an earlier statement of the upgrade added to a table it reads,
    itself or through a function the upgrade (re)defines."""
    added: dict[str, list[tuple[str, str]]] = {}
    functions: dict[str, str] = {}  # name -> text of the statement of the upgrade that (re)defines it
    for m in migrations:
        for sp in m.statements:
            t = sp.trace
            if t.verb in est.QUERY_VERBS:
                text = t.text + "".join(
                    body for name, body in functions.items() if re.search(rf"\b{name}\s*\(", t.text)
                )
                for table in sorted({lock.production for lock in t.locks if lock.production}):
                    for column, where in added.get(table, []):
                        if re.search(rf"\b{re.escape(column)}\b", text):
                            rows = facts[table].rows if table in facts else 0
                            sp.unanalyzed.append(Unanalyzed(table, column, where, rows))
            for rel, column in t.effects.added_columns:
                if rel.production:
                    added.setdefault(rel.production, []).append((column, f"{m.id} #{t.number}"))
            defined = FUNCTION_NAME.search(t.text) if t.verb == "CREATE" and not t.error else None
            if defined:
                functions[defined.group(1)] = t.text


def _unanalyzed_warning(m: MigrationPlan, sp: StatementPlan) -> PlanWarning:
    tables = sorted({u.table for u in sp.unanalyzed})
    columns = ", ".join(f"{u.table}.{u.column} (added by {u.added_by})" for u in sp.unanalyzed)
    message = (
        f"#{sp.trace.number} queries {columns}: PostgreSQL has no statistics on a column until its table is "
        "analyzed, so it guesses how many rows match, and may choose a plan thousands of times slower "
        f"({', '.join(f'{t}: {facts_rows(sp, t):,} rows' for t in tables)})"
    )
    analyze = "ANALYZE " + ", ".join(tables)  # shown to the operator
    return PlanWarning(m.id, sp.trace.number, message, [
        f"run {analyze} once the migration that adds the column is applied, before this one runs: with yoyo, "
        "apply up to it first (yoyo apply --revision <id>), analyze, then apply the rest",
        f"if the upgrade already hangs on this statement: cancel it (pg_cancel_backend; this migration rolls "
        f"back, the ones before it stay applied), run {analyze}, and upgrade again",
    ])  # fmt: skip


def facts_rows(sp: StatementPlan, table: str) -> int:
    return max((u.rows for u in sp.unanalyzed if u.table == table), default=0)


def _warnings(plan: Plan) -> list[PlanWarning]:
    warnings = []
    for m in plan.migrations:
        if m.not_traced:
            warnings.append(PlanWarning(m.id, 0, f"{m.id} was not traced: {m.not_traced}", []))
        warnings += [_unanalyzed_warning(m, sp) for sp in m.statements if sp.unanalyzed]
        for b in m.blocked:
            if b.what not in (WRITES, READS_AND_WRITES):
                continue
            longer = b.seconds > plan.max_lock_s
            unknown = b.bound == Bound.AT_LEAST and not longer
            if not longer and not unknown:
                continue
            window = [s for s in m.statements if b.statement <= s.trace.number <= b.until]
            slow = [s for s in window if s.estimate.seconds > 0 or s.estimate.bound == Bound.AT_LEAST]
            how_long = b.bound.figure(b.seconds)
            if unknown:
                how_long += f", possibly more than {format_seconds(plan.max_lock_s)}"
            held = "until the migration commits" if m.transactional and b.until > b.statement else "while it runs"
            through = ", ".join(f"#{s.trace.number} ({s.estimate.describe()})" for s in slow)
            message = (f"#{b.statement} takes {trace.sql_name(b.mode)} on {b.table}, held {held}: {b.what} on "
                       f"{b.table} blocked for {how_long}" + (f", through {through}" if through else ""))  # fmt: skip
            fixes = [f"#{s.trace.number}: {fix}" for s in slow for fix in _fixes(s)]
            if plan.panoramax:
                fixes.append("this is Panoramax's migration: its statements are not yours to change; upgrade in a "
                             f"maintenance window of at least {format_seconds(m.seconds)} with the API stopped "
                             "or read-only")  # fmt: skip
            warnings.append(PlanWarning(m.id, b.statement, message, fixes))
    return warnings


@dataclass(frozen=True)
class Options:
    panoramax_source: str | None
    scratch_url: str | None
    max_lock_s: float
    cache_dir: Path
    migrations_dir: Path | None
    connect_timeout_s: float
    lock_wait_s: float


def _migrations(conn: psycopg.Connection, options: Options) -> tuple[bool, str, str, list[source.Migration]]:
    """(panoramax?, database described, source described, pending migrations)."""
    from ops.schema import status
    from ops.schema.files import default_migrations_dir

    detected = kind.detect(conn)
    if detected.panoramax:
        if not options.panoramax_source:
            raise UsageError(
                f"this is a {detected.describe()}: name the Panoramax release to plan with --panoramax (a version "
                "such as 2.15.1, a geovisio wheel or sdist, or a migrations folder)"
            )
        folder = source.resolve(options.panoramax_source, options.cache_dir)
        applied = {row[0] for row in conn.execute(queries.statement("plan", "applied_hashes")).fetchall()}
        pending = source.pending(source.read_folder(folder), applied)
        return True, detected.describe(), f"Panoramax migrations of {options.panoramax_source}", pending
    if options.panoramax_source:
        raise UsageError(
            f"--panoramax plans a Panoramax-managed database; this is an {detected.describe()}: "
            "ops db plan without --panoramax plans ops's own migrations"
        )
    directory = options.migrations_dir or default_migrations_dir()
    wanted = set(status.pending_migration_ids(conn, directory))
    every = source.read_folder(directory)
    return False, detected.describe(), f"ops's migrations ({directory})", [m for m in every if m.id in wanted]


def make_plan(
    conn: psycopg.Connection, url: str, options: Options, progress: Callable[[str], None] = lambda _m: None
) -> Plan:
    """The plan of the pending migrations of the database behind ``conn`` (read-only) and ``url``."""
    started = time.monotonic()
    panoramax, described, where, pending = _migrations(conn, options)
    plan = Plan(described, panoramax, where, [], None, options.max_lock_s)
    if not pending:  # the scratch databases killed plans left go all the same
        plan.leftovers = scratch.drop_leftovers_of(url, options.connect_timeout_s)
        plan.wall_s = time.monotonic() - started
        return plan
    progress(f"copying the schema into a scratch database ({len(pending)} migration(s) to trace)")
    with scratch.scratch_database(
        url, options.scratch_url, connect_timeout_s=options.connect_timeout_s, lock_wait_s=options.lock_wait_s
    ) as (box, leftovers):
        plan.scratch, plan.leftovers, plan.unconfined = box.name, leftovers, box.unconfined
        tracer = trace.Tracer(box.url, options.connect_timeout_s, progress=lambda mid: progress(f"tracing {mid}"),
                              confined=box.unconfined is None, observer_url=box.observer_url)  # fmt: skip
        try:
            progress("measuring this server's rates on a sample")
            plan.rates = est.calibrate(tracer.conn)
            traces = tracer.replay(pending)
        finally:
            tracer.close()
    names = _involved(traces)
    facts = est.production_facts(conn, names)
    python: str | None = None  # the first Python migration: what it changes, the copy lacks from there on
    for mt in traces:
        m = _migration_plan(conn, mt, facts, plan.rates)
        if m.error and python:
            m.not_traced, m.error = f"{m.error}, after {python}, whose changes the copy lacks", None
        python = python or (mt.id if mt.not_traced else None)
        plan.migrations.append(m)
    _mark_unanalyzed(plan.migrations, facts)
    plan.warnings = _warnings(plan)
    plan.wall_s = time.monotonic() - started
    return plan


def _involved(traces: list[MigrationTrace]) -> set[str]:
    names: set[str] = set()
    for mt in traces:
        for st in mt.statements:
            names |= {lock.production for lock in st.locks if lock.production}
            e = st.effects
            for t in [*e.rewritten, *e.truncated, *e.indexes_built, *(v[0] for v in e.validated)]:
                names |= {n for n in (t.production, t.table) if n}
    return names


def _migration_plan(
    conn: psycopg.Connection, mt: MigrationTrace, facts: dict[str, est.Facts], rates: Rates | None
) -> MigrationPlan:
    m = MigrationPlan(mt.id, mt.transactional, not_traced=mt.not_traced)
    if not mt.transactional:  # read on production: the scratch copy has no invalid index (pg_dump leaves them)
        m.interrupted = [describe(name, valid) for _schema, name, valid in
                         interrupted_indexes(conn, [s.text for s in mt.statements])]  # fmt: skip
    for st in mt.statements:
        if st.error:
            m.error = f"statement #{st.number} failed on the scratch copy: {st.error}"
        explained = est.explain_dml(conn, st) if rates else None
        m.statements.append(StatementPlan(st, est.estimate(st, facts, rates, explained) if rates else Estimate(0.0)))
    m.blocked = _blocked(m)
    return m
