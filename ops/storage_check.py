"""``ops storage check``: (rows and files together, so beside the storage package, which knows only files) picture rows whose files are gone (the data loss that matters), and with
``verify`` originals whose content no longer matches the MD5 recorded at upload.

Pictures are read a page at a time (keyset paging) and each page compared with the storage (a listing of
the key range on S3, a stat per file on disk): memory stays flat whatever the size of the instance.
Originals are read in parallel by a bounded pool for ``verify``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

import psycopg

from ops import queries
from ops.report import silent
from ops.storage import Area, Storage
from ops.storage.layout import Unreadable, picture_key

PAGE = 1000
VERIFY_THREADS = 4
SHOWN = 20
PREPARED = ("ready", "hidden")  # statuses whose derivates are expected
PROOF_SAMPLE = 20


def _sample(conn: psycopg.Connection) -> list[UUID]:
    return [r[0] for r in conn.execute(queries.statement("storage_check", "ready_sample"), {"n": PROOF_SAMPLE})]


def location_problem(conn: psycopg.Connection, storage: Storage) -> str | None:
    """doctor --storage: what a deleting command would say of the location (not mounted, empty, foreign), or
    None when the originals of a sample of ready pictures are where the layout says."""
    from ops.errors import StorageError

    storage.proven_at = None
    try:
        storage.prove(_sample(conn))
    except StorageError as e:
        return str(e)
    return None


def unwritable(conn: psycopg.Connection, storage: Storage) -> list[str] | None:
    """doctor --storage: the folders holding a sample of ready pictures' files that this process may not
    delete from (None: not knowable here, on S3)."""
    ids = _sample(conn)
    found: list[str] = []
    for area in storage.areas.values():
        problems = area.unwritable(ids)
        if problems is None:
            return None
        found += problems
    return found


def prove_location(conn: psycopg.Connection, storage: Storage) -> None:
    """Before a deleting command deletes anything: the storage holds the files of a few ready pictures
    where the layout says (``Storage.prove``), else ``StorageUnavailable``. Once per run (again after a
    minute in a long-running worker)."""
    if storage.needs_proof():
        storage.prove(_sample(conn))


@dataclass
class CheckResult:
    pictures: int = 0
    originals_missing: dict[str, int] = field(default_factory=dict)  # per picture status
    derivates_missing: int = 0  # regenerable
    derivates_missing_examples: list[str] = field(default_factory=list)
    verified: int = 0
    md5_mismatch: int = 0
    md5_unrecorded: int = 0
    unreadable: int = 0  # originals whose place holds no regular file, lies below a link, or cannot be read
    unreadable_examples: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    @property
    def ready_without_original(self) -> int:
        return self.originals_missing.get("ready", 0)

    @property
    def ok(self) -> bool:
        """No ready picture lacks its original, no original is unreadable, none differs from its MD5."""
        return not self.ready_without_original and not self.md5_mismatch and not self.unreadable

    def _unreadable(self, pic_id: UUID, reason: str) -> None:
        self.unreadable += 1
        if len(self.unreadable_examples) < SHOWN:
            self.unreadable_examples.append(f"permanent/{picture_key(pic_id)}: {reason}")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ready_without_original": self.ready_without_original, "ok": self.ok}

    def _example(self, text: str) -> None:
        if len(self.examples) < SHOWN:
            self.examples.append(text)


def count(conn: psycopg.Connection, seq_ids: list[UUID] | None) -> int:
    row = conn.execute(queries.statement("storage_check", "count"), {"seq_ids": seq_ids}).fetchone()
    return int(row[0]) if row else 0


def _md5_as_uuid(hexdigest: str) -> UUID:
    return UUID(hex=hexdigest)  # Panoramax stores the MD5 of an original in a uuid column


def _read(area: Area, pic_id: UUID) -> str | Unreadable | None:
    """The MD5 of an original, or why it cannot be read (the check goes on with the others)."""
    try:
        return area.md5(pic_id)
    except Unreadable as e:
        return e


def check(
    conn: psycopg.Connection,
    storage: Storage,
    *,
    seq_ids: list[UUID] | None = None,
    verify: bool = False,
    progress: Callable[[int], None] = silent,
) -> CheckResult:
    """Compare the pictures (of ``seq_ids``, or all) with the storage."""
    result = CheckResult()
    permanent, derivates = storage.areas["permanent"], storage.areas["derivates"]
    sparse = seq_ids is not None
    after = UUID(int=0)
    with ThreadPoolExecutor(max_workers=VERIFY_THREADS) as pool:
        while True:
            rows = conn.execute(
                queries.statement("storage_check", "page"), {"after": after, "seq_ids": seq_ids, "page": PAGE}
            ).fetchall()
            if not rows:
                return result
            ids = [r[0] for r in rows]
            originals = permanent.present(ids, sparse=sparse)
            odd = permanent.absent_reasons([i for i in ids if i not in originals])
            # Derivatives of every prepared picture, its original there or not: a wrong prefix or an unmounted
            # area shows in both counts.
            prepared = [pic_id for pic_id, status, _md5 in rows if status in PREPARED]
            with_derivates = derivates.present(prepared, sparse=sparse)
            for pic_id, status, _md5 in rows:
                if pic_id in odd:
                    result._unreadable(pic_id, odd[pic_id])
                elif pic_id not in originals:
                    result.originals_missing[status] = result.originals_missing.get(status, 0) + 1
                    result._example(f"{status} picture {pic_id}: original missing")
                if status in PREPARED and pic_id not in with_derivates:
                    result.derivates_missing += 1
                    if len(result.derivates_missing_examples) < SHOWN:
                        result.derivates_missing_examples.append(f"{status} picture {pic_id}: derivates missing")
            if verify:
                to_read = [(pic_id, md5) for pic_id, _s, md5 in rows if pic_id in originals and md5 is not None]
                result.md5_unrecorded += sum(1 for pic_id, _s, md5 in rows if pic_id in originals and md5 is None)
                for (pic_id, recorded), actual in zip(to_read, pool.map(lambda i: _read(permanent, i[0]), to_read),
                                                      strict=True):  # fmt: skip
                    if isinstance(actual, Unreadable):
                        result._unreadable(pic_id, str(actual))
                        continue
                    result.verified += 1
                    if actual is None or _md5_as_uuid(actual) != recorded:
                        result.md5_mismatch += 1
                        result._example(f"picture {pic_id}: original differs from its recorded MD5")
            result.pictures += len(rows)
            progress(len(rows))
            after = ids[-1]
