"""What PostgreSQL's JIT costs the per-sequence functions on this server, measured on this server.

PostgreSQL JIT-compiles a statement whose estimated cost passes ``jit_above_cost``. The plan of
``compute_sequence_geom`` (ST_DumpSegments and geography lengths) is costed above it, so with ``jit = on``
(PostgreSQL's default) every call compiles before it runs: ~170 ms of compilation for ~1 ms of work on the
bench machine. ops's own sessions run with ``jit = off`` (``ops.db.SESSION_SETTINGS``); Panoramax's API
sessions get the server's setting, for its triggers and its refresh. This module times a few calls in a
session that has the server's own settings, with JIT as the server sets it and then with JIT off, so that
``ops db status`` can say what it costs here and the one setting that removes it (ops changes none).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from ops import db, queries

FUNCTION = "compute_sequence_geom"
CALLS = 7
WORTH_SAYING = 3.0  # compiled calls this many times slower than plain ones are worth a line…
MIN_GAP_MS = 20.0  # …and slower by this much at least: a compilation costs tens of ms, noise a few


@dataclass(frozen=True)
class JitReport:
    database: str
    server_jit: bool  # what sessions without ops's option get (Panoramax's API)
    jit_above_cost: str
    function: str = FUNCTION
    ms_per_call_with_jit: float | None = None
    ms_per_call_without_jit: float | None = None

    @property
    def costly(self) -> bool:
        """The server compiles the function, and that makes every call (the fastest compiled one) WORTH_SAYING
        times slower than a plain one or more, and MIN_GAP_MS slower at least: a clear, repeatable gap, not
        the noise of a busy server (which made one reading out of three flip)."""
        w, wo = self.ms_per_call_with_jit, self.ms_per_call_without_jit
        return (self.server_jit and w is not None and wo is not None and w > WORTH_SAYING * max(wo, 0.01)
                and w - wo >= MIN_GAP_MS)  # fmt: skip

    @property
    def fix(self) -> str:
        text = queries.identified("ddl", "jit_off", database=self.database).as_string(None)
        return " ".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "costly": self.costly, "fix": self.fix if self.costly else None}

    def describe(self) -> str:
        if not self.server_jit:
            return f"JIT: off on this server (jit = off): {self.function}() is never compiled"
        if self.ms_per_call_with_jit is None or self.ms_per_call_without_jit is None:
            return (
                f"JIT: on (jit_above_cost {self.jit_above_cost}); no sequence with pictures to time {self.function}()"
            )
        timing = (f"{self.ms_per_call_with_jit:.1f} ms per call with JIT (jit_above_cost {self.jit_above_cost}), "
                  f"{self.ms_per_call_without_jit:.1f} ms without")  # fmt: skip
        if not self.costly:
            return f"JIT: on; {self.function}(): {timing}: no cost worth removing"
        return (f"JIT: this server compiles {self.function}() on every call: {timing}. Panoramax's API and "
                f"triggers pay it; ops's sessions run without JIT. To remove it: {self.fix} (or raise "
                "jit_above_cost); ops changes no server setting")  # fmt: skip


def _call_ms(conn: psycopg.Connection, seq_id: Any, jit: str) -> float:
    conn.execute("SELECT set_config('jit', %s, true)", (jit,))
    started = time.perf_counter()
    conn.execute(sql.SQL("SELECT {}(%s)").format(sql.Identifier(FUNCTION)), (seq_id,)).fetchone()
    return (time.perf_counter() - started) * 1000


def measure(conn: psycopg.Connection) -> JitReport | None:
    """Time ``compute_sequence_geom`` on a few sequences in ``conn``, a read-only session opened WITHOUT
    ops's JIT option (so it has the server's own): with JIT as the server sets it, then with JIT off. None
    when the database has no such function."""
    if not db.scalar(conn, "SELECT to_regproc(%s) IS NOT NULL", (FUNCTION,)):
        return None
    database = str(db.scalar(conn, "SELECT current_database()"))
    server_jit = str(db.scalar(conn, "SELECT current_setting('jit')")) == "on"
    above = str(db.scalar(conn, "SELECT current_setting('jit_above_cost')"))
    report = JitReport(database, server_jit, above)
    if not server_jit:
        return report
    seq_ids = [r[0] for r in conn.execute(queries.statement("sequence_targets", "sample"), {"n": CALLS}).fetchall()]
    if not seq_ids:
        return report
    with_jit, without = [], []
    with conn.transaction():  # interleaved, so that a busy moment weighs on both sides alike
        for seq_id in seq_ids:
            with_jit.append(_call_ms(conn, seq_id, "on"))
            without.append(_call_ms(conn, seq_id, "off"))
    # the fastest compiled call against the typical plain one: a gap that every call shows
    return JitReport(
        database, server_jit, above, FUNCTION, round(min(with_jit), 1), round(statistics.median(without), 2)
    )
