"""How long each traced statement would take on this production database.

The work a statement does is read from its trace (an index built on a table, a table rewritten, a
constraint validated, rows updated); its size from production's catalogs and statistics (never a row);
the rows a DML statement touches from ``EXPLAIN`` on production (planned, never executed); and the time
from this server's rates, measured once per plan on a sample in the scratch database.

A statement whose time depends on its query (``CREATE MATERIALIZED VIEW … AS``, ``INSERT … SELECT``, a
function call) gets a lower bound only: reading the tables it reads. Its real time can be far longer (a
join, a grid of cells): the plan says so instead of guessing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlparse
import sqlparse.sql
import sqlparse.tokens
from psycopg import sql

from ops import db, queries
from ops.plan import vet
from ops.plan.bound import Bound
from ops.plan.trace import StatementTrace

CALIBRATION_ROWS = 200_000
GIST_PER_BTREE = 3.5  # a GiST build on points against a btree on uuids, on the bench machine
GB = 1024**3
DML_VERBS = ("UPDATE", "DELETE", "INSERT", "MERGE")
QUERY_VERBS = tuple(
    v.upper() for v in ("select", "insert", "refresh", "do", "call")
)  # reading existing tables: a query


@dataclass(frozen=True)
class Rates:
    """This server's speed, measured on the calibration sample."""

    scan_s_per_gb: float
    rewrite_s_per_gb: float
    btree_s_per_mrow: float  # a key in random order (a uuid), the read of the table included
    gist_s_per_mrow: float
    update_s_per_mrow: float  # per million rows, without index entries
    index_entry_s_per_mrow: float  # per million rows, for each index the update adds entries to
    sample_rows: int
    sample_bytes: int
    # A btree's sort and build alone (the read of its table rated apart, read_s_per_gb): its key in random
    # order, a uuid or a text (wide) or a number or a time (narrow), or in the table's own order.
    read_s_per_gb: float
    btree_wide_s_per_mrow: float
    btree_narrow_s_per_mrow: float
    btree_sorted_s_per_mrow: float

    def index_s_per_mrow(self, method: str | None) -> float:
        return self.gist_s_per_mrow if method in ("gist", "spgist", "gin") else self.btree_s_per_mrow

    def btree_build_s(self, gb: float, rows: int, correlation: float | None, narrow: bool) -> float:
        """A btree build on a table of ``gb`` and ``rows``: its read, then its sort at its key's rate, between
        the random-order and the in-order one by how ordered the table is by the key (``correlation``, from
        production's statistics; unknown: random order)."""
        random_order = self.btree_narrow_s_per_mrow if narrow else self.btree_wide_s_per_mrow
        ordered = min(abs(correlation), 1.0) if correlation is not None else 0.0
        per_mrow = self.btree_sorted_s_per_mrow + max(random_order - self.btree_sorted_s_per_mrow, 0.0) * (1 - ordered)
        return gb * self.read_s_per_gb + rows / 1e6 * per_mrow

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}

    def describe(self) -> str:
        return (
            f"scan {self.scan_s_per_gb:.2g} s/GB, rewrite {self.rewrite_s_per_gb:.2g} s/GB, "
            f"btree index {self.btree_s_per_mrow:.2g} s per million rows, GiST index "
            f"{self.gist_s_per_mrow:.2g} s per million rows, update {self.update_s_per_mrow:.2g} s per million "
            f"rows (+{self.index_entry_s_per_mrow:.2g} per index)"
        )


def _timed(conn: psycopg.Connection, name: str, params: dict[str, Any] | None = None) -> float:
    started = time.perf_counter()
    conn.execute(queries.statement("plan", name), params)
    return time.perf_counter() - started


def calibrate(conn: psycopg.Connection, rows: int = CALIBRATION_ROWS) -> Rates:
    """Measure the kinds of work on a sample table of the scratch database (dropped after)."""
    postgis = bool(db.scalar(conn, "SELECT to_regtype('geometry') IS NOT NULL"))
    _timed(conn, "calibrate_table" if postgis else "calibrate_table_plain", {"rows": rows})
    try:
        conn.execute(queries.statement("plan", "calibrate_analyze"))
        size = int(db.scalar(conn, queries.statement("plan", "calibrate_size")))
        gb, mrows = max(size, 1) / GB, rows / 1e6
        _timed(conn, "calibrate_scan")  # warms the cache, as production's hot tables are
        scan = _timed(conn, "calibrate_scan")
        rewrite = _timed(conn, "calibrate_rewrite")
        bare_update = _timed(conn, "calibrate_update")
        conn.execute(queries.statement("plan", "calibrate_vacuum"))
        _timed(conn, "calibrate_read")
        read = _timed(conn, "calibrate_read")
        narrow = _timed(conn, "calibrate_btree_narrow")
        btree_sorted = _timed(conn, "calibrate_btree_sorted")
        conn.execute(queries.statement("plan", "calibrate_drop_extra"))  # two indexes for the update below
        btree = _timed(conn, "calibrate_btree")
        # without PostGIS there is no geometry to index; a GiST build elsewhere is rated from the btree's
        gist = _timed(conn, "calibrate_gist") if postgis else btree * GIST_PER_BTREE
        indexed_update = _timed(conn, "calibrate_update")
    finally:
        conn.execute(queries.statement("plan", "calibrate_drop"))
    return Rates(
        scan_s_per_gb=scan / gb,
        rewrite_s_per_gb=rewrite / gb,
        btree_s_per_mrow=btree / mrows,
        gist_s_per_mrow=gist / mrows,
        update_s_per_mrow=bare_update / mrows,
        index_entry_s_per_mrow=max(indexed_update - bare_update, 0.0) / 2 / mrows,
        sample_rows=rows,
        sample_bytes=size,
        read_s_per_gb=read / gb,
        btree_wide_s_per_mrow=max(btree - read, 0.0) / mrows,
        btree_narrow_s_per_mrow=max(narrow - read, 0.0) / mrows,
        btree_sorted_s_per_mrow=max(min(btree_sorted, narrow, btree) - read, 0.0) / mrows,
    )


@dataclass(frozen=True)
class Facts:
    """A relation of production: from the catalogs and the statistics collector."""

    kind: str
    bytes: int
    rows: int
    nb_indexes: int
    index_bytes: int
    correlations: dict[str, float] = field(default_factory=dict)  # column -> pg_stats.correlation


def _qualified(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


def production_facts(conn: psycopg.Connection, names: set[str]) -> dict[str, Facts]:
    pairs = [(n.split(".", 1) if "." in n else ["public", n]) for n in sorted(names)]
    params = {"schemas": [p[0] for p in pairs], "names": [p[1] for p in pairs]}
    correlations: dict[str, dict[str, float]] = {}
    for schema, name, column, correlation in conn.execute(queries.statement("plan", "correlations"), params):
        correlations.setdefault(_qualified(schema, name), {})[column] = float(correlation)
    return {
        _qualified(schema, name): Facts(
            kind, int(size), int(count), int(nb), int(ib), correlations.get(_qualified(schema, name), {})
        )
        for schema, name, kind, size, count, nb, ib in conn.execute(queries.statement("plan", "sizes"), params)
    }


@dataclass
class Explained:
    rows: int
    table: str | None  # the relation the statement writes
    seq_scan: bool  # reads the whole table


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out += _nodes(child)
    return out


def _explain(conn: psycopg.Connection, query: sql.Composable) -> dict[str, Any] | str:
    """The plan of ``EXPLAIN (FORMAT JSON) query`` on production, in a transaction rolled back (the session
    is read-only: nothing runs); or why it cannot be planned."""
    try:
        with conn.transaction(force_rollback=True):
            # prepare=True: the extended protocol, which takes one statement only (the simple one runs a
            # ``; COMMIT; …`` hidden in the text)
            row = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(query), prepare=True).fetchone()
            (doc,) = row or ("[]",)
    except psycopg.Error as exc:
        return " ".join(str(exc).split()).split(" LINE ")[0]
    plan: dict[str, Any] = (json.loads(doc) if isinstance(doc, str) else doc)[0]["Plan"]
    return plan


def _where_probe(text: str) -> tuple[str, sql.Composable] | None:
    """For ``UPDATE t SET … WHERE …`` or ``DELETE FROM t WHERE …`` (one table, no FROM, USING or
    RETURNING): the table and a ``SELECT`` of the same rows, which production can plan even when the SET
    names a column the migration has just added."""
    statement = sqlparse.parse(text.strip().rstrip(";"))[0]
    tokens = [t for t in statement.tokens if not t.is_whitespace and t.ttype not in sqlparse.tokens.Comment]
    words = [t.normalized.upper() if t.is_keyword else "" for t in tokens]
    if not tokens or any(w in ("FROM", "USING", "RETURNING", "WITH") for w in words[2:]):
        if not (words[:2] == ["DELETE", "FROM"] and "USING" not in words and "RETURNING" not in words):
            return None
    where = next((t for t in tokens if isinstance(t, sqlparse.sql.Where)), None)
    if words[:1] == ["UPDATE"] and len(tokens) > 1 and isinstance(tokens[1], sqlparse.sql.Identifier):
        target = tokens[1]
    elif words[:2] == ["DELETE", "FROM"] and len(tokens) > 2 and isinstance(tokens[2], sqlparse.sql.Identifier):
        target = tokens[2]
    else:
        return None
    if "RETURNING" in str(where or "").upper():
        return None
    return target.get_real_name() or "", sql.SQL("SELECT 1 FROM {} {}").format(
        sql.SQL(str(target)), sql.SQL(str(where or ""))
    )


def explain_dml(conn: psycopg.Connection, st: StatementTrace) -> Explained | str | None:
    """The rows a DML statement would touch on production, from ``EXPLAIN`` (planned, never executed): of
    the statement, else of a ``SELECT`` of its rows; or why neither can be planned yet."""
    if st.verb not in DML_VERBS or st.error:
        return None
    text = st.text.strip().rstrip(";")
    if not vet.single_dml(text):
        return "not one UPDATE, DELETE, INSERT or MERGE to PostgreSQL's parser: not sent to production"
    plan = _explain(conn, sql.SQL(text))
    if isinstance(plan, dict) and plan.get("Node Type") == "ModifyTable":
        child = (plan.get("Plans") or [plan])[0]
        table = plan.get("Relation Name")
        seq = any(n.get("Node Type") == "Seq Scan" and n.get("Relation Name") == table for n in _nodes(child))
        return Explained(int(child.get("Plan Rows", 0)), table, seq)
    reason = plan if isinstance(plan, str) else "no ModifyTable in its plan"
    probe = _where_probe(text)
    if probe is None:
        return reason
    table, query = probe
    rows_plan = _explain(conn, query)
    if isinstance(rows_plan, str):
        return reason
    seq = any(n.get("Node Type") == "Seq Scan" for n in _nodes(rows_plan))
    return Explained(int(rows_plan.get("Plan Rows", 0)), table, seq)


@dataclass
class Estimate:
    seconds: float
    bound: Bound = Bound.ABOUT
    basis: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return self.bound.figure(self.seconds)

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 3), "bound": self.bound, "basis": self.basis}


def _rows(n: int) -> str:
    return f"{n:,} rows"


def estimate(st: StatementTrace, facts: dict[str, Facts], rates: Rates, explained: Explained | str | None) -> Estimate:
    """The time of one statement on production, from its trace and production's sizes."""
    est = Estimate(0.0)
    e = st.effects
    if st.verb == "TRUNCATE":
        return est
    for rel in e.rewritten:
        f = facts.get(rel.production or "")
        if f is None:
            continue
        if rel.method:  # an index rebuilt (with its table, or alone: REINDEX)
            table = facts.get(rel.table or "")
            rows = table.rows if table else 0
            est.seconds += rows / 1e6 * rates.index_s_per_mrow(rel.method)
            est.basis.append(f"rebuilds index {rel.name} ({_rows(rows)}, {rel.method})")
        else:
            est.seconds += f.bytes / GB * rates.rewrite_s_per_gb
            est.basis.append(f"rewrites {rel.name} ({f.bytes / GB:.2f} GB)")
    for idx in e.indexes_built:
        table = facts.get(idx.table or "")
        if table is None:
            continue
        gb = table.bytes / GB
        if idx.method == "btree":
            correlation = table.correlations.get(idx.key) if idx.key else None
            est.seconds += rates.btree_build_s(gb, table.rows, correlation, idx.narrow_key)
            order = f", {idx.key} correlation {correlation:.2f}" if correlation is not None else ""
            kind = "narrow" if idx.narrow_key else "wide"
            est.basis.append(f"builds index {idx.name} on {idx.table} ({_rows(table.rows)}, btree, {kind} key{order})")
        else:
            est.seconds += gb * rates.scan_s_per_gb + table.rows / 1e6 * rates.index_s_per_mrow(idx.method)
            est.basis.append(f"builds index {idx.name} on {idx.table} ({_rows(table.rows)}, {idx.method})")
    for rel, what in e.validated:
        f = facts.get(rel.production or "")
        if f is not None:
            est.seconds += f.bytes / GB * rates.scan_s_per_gb
            est.basis.append(f"scans {rel.name} to validate {what} ({f.bytes / GB:.2f} GB)")
    if st.verb in DML_VERBS and isinstance(explained, Explained) and explained.table in facts:
        f = facts[explained.table]
        if explained.seq_scan:
            est.seconds += f.bytes / GB * rates.scan_s_per_gb
        per_row = rates.update_s_per_mrow + f.nb_indexes * rates.index_entry_s_per_mrow
        est.seconds += explained.rows / 1e6 * per_row
        est.basis.append(f"{st.verb.lower()}s ~{_rows(explained.rows)} of {explained.table} (EXPLAIN on production)")
        return est
    written = [lock.production for lock in st.locks if lock.production and lock.mode == "RowExclusiveLock"]
    read = [lock.production for lock in st.locks if lock.production and lock.mode == "AccessShareLock"]
    if st.verb in DML_VERBS and written and not read:
        target = facts.get(written[0])
        if target is not None:  # EXPLAIN impossible before the migration's own objects exist: every row
            per_row = rates.update_s_per_mrow + target.nb_indexes * rates.index_entry_s_per_mrow
            est.seconds += target.bytes / GB * rates.scan_s_per_gb + target.rows / 1e6 * per_row
            est.bound = Bound.AT_MOST
            reason = f": {explained}" if isinstance(explained, str) else ""
            est.basis.append(f"{st.verb.lower()}s at most every row of {written[0]} ({_rows(target.rows)}; no "
                             f"EXPLAIN before the migration's own objects exist{reason})")  # fmt: skip
        return est
    if read and st.verb in QUERY_VERBS:
        volume = sum(facts[name].bytes for name in read if name in facts)
        est.seconds += volume / GB * rates.scan_s_per_gb
        est.bound = Bound.AT_LEAST
        est.basis.append(
            f"runs a query over {', '.join(sorted(read))} ({volume / GB:.2f} GB): at least reading them; "
            "its joins and functions can take far longer"
        )
    return est
