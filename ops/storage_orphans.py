"""``ops storage orphans``: files whose picture has no row and no pending delete job, and their removal (rows and
files together, so beside the storage package, which knows only files).

The listing of each area is streamed and checked against the database a page of pictures at a time, so
memory stays flat whatever the size of the storage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from ops import queries
from ops.report import Log, silent
from ops.storage import Storage
from ops.storage.layout import KINDS, picture_of
from ops.storage_check import prove_location

PAGE = 1000
SHOWN = 10
# Entries of a listing never deleted, with the reason (see the symbolic-link policy in storage/local.py).
KEPT = {"folder-link": "a symbolic link to a folder: never followed", "special": "not a regular file (FIFO, socket…)"}


def _per_kind() -> dict[str, int]:
    return dict.fromkeys(KINDS, 0)


@dataclass
class OrphanReport:
    deleted: bool
    orphan_files: dict[str, int] = field(default_factory=_per_kind)
    orphan_bytes: dict[str, int] = field(default_factory=_per_kind)
    orphan_pictures: dict[str, int] = field(default_factory=_per_kind)
    removed_files: dict[str, int] = field(default_factory=_per_kind)
    removed_bytes: dict[str, int] = field(default_factory=_per_kind)
    skipped_too_recent: int = 0
    unrecognized_files: int = 0
    kept: dict[str, int] = field(default_factory=dict)  # why -> entries never touched (links to folders, FIFOs)
    examples: list[str] = field(default_factory=list)
    kept_examples: list[str] = field(default_factory=list)
    not_deleted: dict[str, int] = field(default_factory=_per_kind)  # orphan files a deletion failed on
    not_deleted_examples: list[str] = field(default_factory=list)  # with the reason

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _settle_page(
    conn: psycopg.Connection,
    storage: Storage,
    kind: str,
    page: dict[UUID, list[tuple[str, int, bool]]],
    report: OrphanReport,
    delete: bool,
) -> None:
    """Count (and with ``delete`` remove) the files of the orphan pictures among one page of pictures; an
    orphan's file younger than the minimum age is left alone (counted as too recent), a picture's is not
    counted at all."""
    if not page:
        return
    orphan_ids = [r[0] for r in conn.execute(queries.load("orphans_check"), {"ids": list(page)}).fetchall()]
    keys = []
    for pic_id in orphan_ids:
        old = [(key, size) for key, size, recent in page[pic_id] if not recent]
        report.skipped_too_recent += len(page[pic_id]) - len(old)
        page[pic_id] = [(key, size, False) for key, size in old]
        if not old:
            continue
        report.orphan_pictures[kind] += 1
        for key, size in old:
            report.orphan_files[kind] += 1
            report.orphan_bytes[kind] += size
            keys.append(key)
            if len(report.examples) < SHOWN:
                report.examples.append(f"{kind}/{key}")
    if delete and keys:
        deletion = storage.delete_keys(kind, keys)
        report.removed_files[kind] += deletion.files[kind]
        report.removed_bytes[kind] += sum(size for pic_id in orphan_ids if pic_id not in deletion.failed
                                          for _key, size, _recent in page[pic_id])  # fmt: skip
        for pic_id, why in deletion.failed.items():
            report.not_deleted[kind] += len(page[pic_id])
            if len(report.not_deleted_examples) < SHOWN:
                report.not_deleted_examples.append(why)


def find_orphans(
    conn: psycopg.Connection,
    storage: Storage,
    *,
    delete: bool = False,
    min_age_s: float = 3600,
    log: Log = silent,
) -> OrphanReport:
    """Files whose picture has no row and no pending delete job; with ``delete``, remove them.

    Files younger than ``min_age_s`` are left alone: an upload may write its file before its row commits.
    Files outside the layout are counted, never touched; a link where a file is expected counts as a file
    (its own size) and is removed itself; links to folders and special files are kept, with the reason.
    """
    report = OrphanReport(delete)
    if delete:  # a wrong location would make every file of another instance an orphan
        prove_location(conn, storage)
    cutoff = datetime.now(UTC) - timedelta(seconds=min_age_s)
    for kind in KINDS:
        page: dict[UUID, list[tuple[str, int, bool]]] = {}
        for stored in storage.areas[kind].list_files():
            if stored.kind in KEPT:
                report.kept[KEPT[stored.kind]] = report.kept.get(KEPT[stored.kind], 0) + 1
                if len(report.kept_examples) < SHOWN:
                    report.kept_examples.append(f"{kind}/{stored.key}: {KEPT[stored.kind]}")
                continue
            pic_id = picture_of(kind, stored.key)
            if pic_id is None:
                report.unrecognized_files += 1
                continue
            if pic_id not in page and len(page) >= PAGE:
                _settle_page(conn, storage, kind, page, report, delete)
                page = {}
            page.setdefault(pic_id, []).append((stored.key, stored.size, stored.modified > cutoff))
        _settle_page(conn, storage, kind, page, report, delete)
        log(f"listed {kind}")
    return report
