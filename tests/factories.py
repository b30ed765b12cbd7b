"""Test data written straight into the real database: accounts, sequences, pictures."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import psycopg

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


@dataclass
class Pic:
    lon: float
    lat: float
    ts: datetime = T0
    filename: str | None = None
    heading: int | None = None
    heading_computed: bool = False
    status: str = "ready"
    type: str = "flat"
    id: UUID | None = None


def make_account(conn: psycopg.Connection, name: str = "alice") -> UUID:
    return conn.execute("INSERT INTO accounts (name) VALUES (%s) RETURNING id", (name,)).fetchone()[0]


def default_account(conn: psycopg.Connection) -> UUID:
    return conn.execute("SELECT id FROM accounts WHERE is_default").fetchone()[0]


def add_picture(conn: psycopg.Connection, account: UUID, pic: Pic) -> UUID:
    pic.id = pic.id or uuid4()
    metadata = {"type": pic.type}
    if pic.filename is not None:
        metadata["originalFileName"] = pic.filename
    conn.execute(
        "INSERT INTO pictures (id, ts, geom, heading, heading_computed, metadata, account_id, status) "
        "VALUES (%s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s, %s, %s, %s, %s)",
        (
            pic.id,
            pic.ts,
            pic.lon,
            pic.lat,
            pic.heading,
            pic.heading_computed,
            json.dumps(metadata),
            account,
            pic.status,
        ),
    )
    return pic.id


def make_sequence(
    conn: psycopg.Connection,
    account: UUID,
    pics: list[Pic],
    ranks: list[int] | None = None,
    status: str = "ready",
) -> UUID:
    """A sequence holding ``pics``, given ranks ``ranks`` (default 1..n in list order)."""
    seq = conn.execute(
        "INSERT INTO sequences (account_id, status) VALUES (%s, %s) RETURNING id", (account, status)
    ).fetchone()[0]
    ranks = ranks or list(range(1, len(pics) + 1))
    for pic, rank in zip(pics, ranks, strict=True):
        if pic.id is None:
            add_picture(conn, account, pic)
        conn.execute("INSERT INTO sequences_pictures (seq_id, rank, pic_id) VALUES (%s, %s, %s)", (seq, rank, pic.id))
    return seq


def walk(lon: float, lat: float, n: int, step: float = 0.0001, seed: int = 1) -> list[Pic]:
    rng = random.Random(seed)
    pics = []
    for i in range(n):
        pics.append(Pic(lon, lat, T0 + timedelta(seconds=2 * i), filename=f"IMG_{i:04}.jpg"))
        lon += step * rng.uniform(0.2, 1.0)
        lat += step * rng.uniform(-0.5, 1.0)
    return pics


def ranked_pictures(conn: psycopg.Connection, seq: UUID) -> list[tuple[int, UUID]]:
    return conn.execute(
        "SELECT rank, pic_id FROM sequences_pictures WHERE seq_id = %s ORDER BY rank", (seq,)
    ).fetchall()


def is_panoramax(conn: psycopg.Connection) -> bool:
    """The database was built by Panoramax's migrations (its history is in _yoyo_migration)."""
    return conn.execute("SELECT to_regclass('_yoyo_migration') IS NOT NULL").fetchone()[0]


def prepared(conn: psycopg.Connection) -> None:
    """As after Panoramax's worker prepared the pictures: no `prepare` job left (its insertion trigger
    queues one per picture; ops's database has no such trigger)."""
    conn.execute("DELETE FROM job_queue WHERE task = 'prepare'")


def rows(conn: psycopg.Connection, table: str) -> int:
    """How many rows ``table`` holds (a name from the tests, never input)."""
    from psycopg import sql

    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]


def picture_ids(conn: psycopg.Connection) -> set[UUID]:
    return {r[0] for r in conn.execute("SELECT id FROM pictures")}
