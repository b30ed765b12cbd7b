"""Accounts: find by id or name, create, set role, show, and delete all the data of an account.

Names are not unique (as in Panoramax): a name matching several accounts is an error asking for an id.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ops import queries
from ops.errors import OpsError, UsageError
from ops.report import Report as Log
from ops.report import silent

if TYPE_CHECKING:
    import psycopg

ROLES = ("admin", "user")
DEFAULT_DELETE_BATCH = 10_000
FIRST_DELETE_BATCH = 1_000
QUICK_BATCH_S = 0.5
SLOW_BATCH_S = 1.5


class AccountNotFound(OpsError):
    pass


class AmbiguousAccount(OpsError):
    pass


@dataclass(frozen=True)
class Account:
    id: UUID
    name: str
    role: str
    is_default: bool
    created_at: datetime

    def label(self) -> str:
        return f"{self.name} ({self.id})"


ACCOUNT_COLUMNS = "id, name, role::text, is_default, created_at"


def parse_identifier(value: str) -> UUID | str:
    """A UUID is an account id; anything else is a name."""
    try:
        return UUID(value)
    except ValueError:
        return value


def find(conn: psycopg.Connection, identifier: UUID | str) -> Account:
    if isinstance(identifier, UUID):
        row = conn.execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = %s", (identifier,)).fetchone()
        if row is None:
            raise AccountNotFound(f"no account with id {identifier}")
        return Account(*row)
    rows = conn.execute(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = %s ORDER BY created_at, id", (identifier,)
    ).fetchall()
    if not rows:
        raise AccountNotFound(f"no account named {identifier!r}")
    if len(rows) > 1:
        ids = ", ".join(str(r[0]) for r in rows)
        raise AmbiguousAccount(f"{len(rows)} accounts are named {identifier!r}: {ids}; give the id of one of them")
    return Account(*rows[0])


def create(conn: psycopg.Connection, identifier: UUID | str) -> tuple[Account | None, bool]:
    """Create an account named ``identifier``; (account, True) when created, (None, False) when the name
    exists (nothing changes, so provisioning scripts can re-run). A new account gets its default token."""
    if isinstance(identifier, UUID):
        raise UsageError("a name must be provided to create an account (got an id)")
    if not identifier.strip():
        raise UsageError("an account name cannot be empty")
    exists = conn.execute("SELECT 1 FROM accounts WHERE name = %s LIMIT 1", (identifier,)).fetchone()
    if exists:
        return None, False
    row = conn.execute(f"INSERT INTO accounts (name) VALUES (%s) RETURNING {ACCOUNT_COLUMNS}", (identifier,)).fetchone()
    return Account(*row), True


def set_role(conn: psycopg.Connection, account: Account, role: str) -> Account:
    if role not in ROLES:
        raise UsageError(f"role {role!r} is not valid: use one of {', '.join(ROLES)}")
    row = conn.execute(
        f"UPDATE accounts SET role = %s WHERE id = %s RETURNING {ACCOUNT_COLUMNS}", (role, account.id)
    ).fetchone()
    return Account(*row)


def describe(conn: psycopg.Connection, account: Account) -> dict[str, Any]:
    nb_sequences, nb_pictures, nb_tokens = conn.execute(
        "SELECT (SELECT count(*) FROM sequences WHERE account_id = %(id)s AND status <> 'deleted'),"
        " (SELECT count(*) FROM pictures WHERE account_id = %(id)s),"
        " (SELECT count(*) FROM tokens WHERE account_id = %(id)s)",
        {"id": account.id},
    ).fetchone()
    data = asdict(account)
    data.update(nb_sequences=nb_sequences, nb_pictures=nb_pictures, nb_tokens=nb_tokens)
    return data


@dataclass
class DeleteDataResult:
    dry_run: bool
    sequences_marked_deleted: int = 0
    pictures_deleted: int = 0
    jobs_enqueued: int = 0
    upload_sets_deleted: int = 0
    batches: int = 0
    longest_batch_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def delete_data(
    conn: psycopg.Connection,
    account: Account,
    *,
    batch_size: int = DEFAULT_DELETE_BATCH,
    dry_run: bool = False,
    log: Log = silent,
) -> DeleteDataResult:
    """Delete all the data of an account; the account and its tokens stay.

    Its sequences are marked ``deleted`` first (tombstones for the federated catalogue, geometry kept); then
    its pictures go in batches, each batch deleting rows and queuing their files' ``delete`` jobs in one
    transaction, so an interrupted run resumes where it stopped; then its upload sets. ``conn``: autocommit.
    """
    result = DeleteDataResult(dry_run)
    params = {"account_id": account.id, "batch_size": batch_size}
    if dry_run:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM sequences WHERE account_id = %(account_id)s AND status <> 'deleted'),"
            " (SELECT count(*) FROM pictures WHERE account_id = %(account_id)s),"
            " (SELECT count(*) FROM upload_sets WHERE account_id = %(account_id)s)",
            params,
        ).fetchone()
        result.sequences_marked_deleted, result.pictures_deleted, result.upload_sets_deleted = counts
        result.jobs_enqueued = result.pictures_deleted
        return result
    with conn.transaction():
        result.sequences_marked_deleted = conn.execute(
            "UPDATE sequences SET status = 'deleted', updated_at = now() "
            "WHERE account_id = %(account_id)s AND status <> 'deleted'",
            params,
        ).rowcount
    batch_sql = queries.load("delete_data_batch")
    start = UUID(int=0)
    after = start
    # Row locks are held for a whole batch: start small (cold cache) and grow up to batch_size while
    # batches stay quick; shrink when one is slow.
    size = min(batch_size, FIRST_DELETE_BATCH)
    while True:
        started = time.monotonic()
        with conn.transaction():
            deleted, queued, last = conn.execute(batch_sql, {**params, "after": after, "batch_size": size}).fetchone()
        elapsed = time.monotonic() - started
        if elapsed < QUICK_BATCH_S:
            size = min(batch_size, size * 2)
        elif elapsed > SLOW_BATCH_S:
            size = max(1, size // 2)
        if deleted == 0:
            if after == start:
                break
            after = start  # a last pass from the start catches pictures added behind us meanwhile
            continue
        after = last
        result.batches += 1
        result.pictures_deleted += deleted
        result.jobs_enqueued += queued
        result.longest_batch_s = max(result.longest_batch_s, elapsed)
        log(f"deleted {result.pictures_deleted} pictures so far ({deleted} in {elapsed:.2f} s)")
    with conn.transaction():
        result.upload_sets_deleted = conn.execute(
            "DELETE FROM upload_sets WHERE account_id = %(account_id)s", params
        ).rowcount
    return result
