"""Accounts: find by id or name, create, set role, show, and delete all the data of an account
(``ops user``).

Names are not unique (as in Panoramax): a name matching several accounts is an error asking for an id.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from ops import db, queries, refresh, worker
from ops.errors import AccountNotFound, AmbiguousAccount, UsageError
from ops.report import Log, silent
from ops.schema import capabilities
from ops.settings import DELETE_BATCH
from ops.storage import Storage
from ops.storage_check import prove_location

ROLES = ("admin", "user")
FIRST_DELETE_BATCH = 1_000
QUICK_BATCH_S = 0.5
SLOW_BATCH_S = 1.5


@dataclass(frozen=True)
class Account:
    id: UUID
    name: str
    role: str
    is_default: bool
    created_at: datetime

    def label(self) -> str:
        return f"{printable(self.name)} ({self.id})"


def printable(text: str) -> str:
    """``text`` with control and other unprintable characters escaped (``\\x1b``): a name shown on a
    terminal cannot move the cursor, clear the screen or forge another line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def parse_identifier(value: str) -> UUID | str:
    """A UUID is an account id; anything else is a name."""
    try:
        return UUID(value)
    except ValueError:
        return value


def _by_name(conn: psycopg.Connection, name: str) -> list[Account]:
    rows = conn.execute(queries.statement("accounts", "by_name"), {"name": name}).fetchall()
    return [Account(*row) for row in rows]


def find(conn: psycopg.Connection, identifier: UUID | str) -> Account:
    if isinstance(identifier, UUID):
        row = conn.execute(queries.statement("accounts", "by_id"), {"id": identifier}).fetchone()
        if row is None:
            raise AccountNotFound(f"no account with id {identifier}")
        return Account(*row)
    found = _by_name(conn, identifier)
    if not found:
        raise AccountNotFound(f"no account named {identifier!r}")
    if len(found) > 1:
        shown = "; ".join(_distinguish(conn, a) for a in found)
        raise AmbiguousAccount(f"{len(found)} accounts are named {identifier!r}: {shown}; give the id of one of them")
    return found[0]


def _distinguish(conn: psycopg.Connection, account: Account) -> str:
    """What tells two accounts of the same name apart: id, role, creation, what they hold."""
    held = holdings(conn, account)
    created = f"{account.created_at:%Y-%m-%d %H:%M:%S}" if account.created_at else "at an unknown date"
    return (f"{account.id} ({account.role}, created {created}, {held.sequences} sequences, "
            f"{held.pictures} pictures)")  # fmt: skip


def _check_name(identifier: UUID | str) -> str:
    if isinstance(identifier, UUID):
        raise UsageError("a name must be provided to create an account (got an id)")
    if not identifier.strip():
        raise UsageError("an account name cannot be empty")
    return identifier


def create(conn: psycopg.Connection, identifier: UUID | str) -> Account | None:
    """Create an account named ``identifier``, or None when the name exists (nothing changes, so
    provisioning scripts can re-run). A new account gets its default token (a trigger)."""
    name = _check_name(identifier)
    if _by_name(conn, name):
        return None
    row = db.one(conn, queries.statement("accounts", "create"), {"name": name})
    return Account(*row)


def set_role(conn: psycopg.Connection, account: Account, role: str) -> Account:
    if role not in ROLES:
        raise UsageError(f"role {role!r} is not valid: use one of {', '.join(ROLES)}")
    row = db.one(conn, queries.statement("accounts", "set_role"), {"role": role, "id": account.id})
    return Account(*row)


@dataclass(frozen=True)
class Holdings:
    """What an account holds."""

    sequences: int
    pictures: int
    upload_sets: int
    tokens: int


def holdings(conn: psycopg.Connection, account: Account) -> Holdings:
    return Holdings(*db.one(conn, queries.load("account_counts"), {"account_id": account.id}))


@dataclass(frozen=True)
class AccountSummary:
    """An account and what it holds, as ``ops user`` shows it."""

    account: Account
    holdings: Holdings

    def as_dict(self) -> dict[str, Any]:
        held = self.holdings
        return {**asdict(self.account), "nb_sequences": held.sequences, "nb_pictures": held.pictures,
                "nb_upload_sets": held.upload_sets, "nb_tokens": held.tokens}  # fmt: skip


def describe(conn: psycopg.Connection, account: Account) -> AccountSummary:
    return AccountSummary(account, holdings(conn, account))


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
    batch_size: int = DELETE_BATCH.default,
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
        held = holdings(conn, account)
        result.sequences_marked_deleted, result.upload_sets_deleted = held.sequences, held.upload_sets
        result.pictures_deleted = result.jobs_enqueued = held.pictures
        return result
    upload_sets_before = holdings(conn, account).upload_sets
    with conn.transaction():
        result.sequences_marked_deleted = conn.execute(
            queries.statement("delete_data_batch", "mark_sequences"), params
        ).rowcount
    start = UUID(int=0)
    after = start
    delete = "delete" if capabilities.one_delete_job_per_picture(conn) else "delete_unindexed"
    # Row locks are held for a whole batch: start small (cold cache) and grow up to batch_size while
    # batches stay quick; shrink when one is slow.
    size = min(batch_size, FIRST_DELETE_BATCH)
    while True:
        started = time.monotonic()
        with conn.transaction():
            pic_ids = [r[0] for r in conn.execute(queries.statement("delete_data_batch", "batch"),
                                                   {**params, "after": after, "batch_size": size}).fetchall()]  # fmt: skip
            deleted = queued = 0
            if pic_ids:
                refresh.expire_cells_of_deleted(conn, pic_ids)
                deleted, queued = db.one(conn, queries.statement("delete_data_batch", delete), {"pic_ids": pic_ids})
        last = pic_ids[-1] if pic_ids else None
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
        assert last is not None
        after = last
        result.batches += 1
        result.pictures_deleted += deleted
        result.jobs_enqueued += queued
        result.longest_batch_s = max(result.longest_batch_s, elapsed)
        log(f"deleted {result.pictures_deleted} pictures so far ({deleted} in {elapsed:.2f} s)")
    with conn.transaction():
        conn.execute(queries.statement("delete_data_batch", "upload_sets"), params)
    # Counted from before: on a Panoramax database a trigger deletes an upload set with its last picture.
    result.upload_sets_deleted = upload_sets_before
    return result


@dataclass
class UserResult:
    """What ``ops user`` did (or, with ``dry_run``, would do): the CLI words it."""

    dry_run: bool
    name: str | None = None  # the name given to --create
    account: AccountSummary | None = None  # None: a dry run's account that does not exist yet
    created: bool | None = None  # --create: True created (or would be), False the name existed
    role_set: str | None = None
    delete_data: DeleteDataResult | None = None
    files: worker.BatchResult | None = None  # --wait: the delete jobs processed

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "account": self.account.as_dict() if self.account else None,
            "created": self.created,
            "role_set": self.role_set,
            "delete_data": self.delete_data.as_dict() if self.delete_data else None,
            "files": self.files.as_dict() if self.files else None,
        }


def manage(
    conn: psycopg.Connection,
    identifier: UUID | str,
    *,
    create_it: bool = False,
    role: str | None = None,
    delete_it: bool = False,
    storage: Storage | None = None,
    batch_size: int = DELETE_BATCH.default,
    dry_run: bool = False,
    log: Log = silent,
) -> UserResult:
    """``ops user``: create, then set the role (one transaction), then delete the account's data; with
    ``storage``, the deleted pictures' files are deleted now rather than by the worker. ``conn``: autocommit
    (read-only for a dry run, which writes nothing)."""
    result = UserResult(dry_run)
    if role is not None and role not in ROLES:
        raise UsageError(f"role {role!r} is not valid: use one of {', '.join(ROLES)}")
    with conn.transaction():
        if create_it:
            result.name = _check_name(identifier)
            result.created = not _by_name(conn, result.name)
            if result.created and dry_run:
                result.role_set = role
                return result
            if result.created:
                create(conn, result.name)
        target = find(conn, identifier)
        if role:
            target = target if dry_run else set_role(conn, target, role)
            result.role_set = role
    result.account = describe(conn, target)
    if delete_it:
        if storage is not None:  # before any row goes: the files are where the database says
            prove_location(conn, storage)
        result.delete_data = delete_data(conn, target, batch_size=batch_size, dry_run=dry_run, log=log)
        if storage is not None and not dry_run:
            result.files = worker.drain(conn, storage, log=log)
    return result
