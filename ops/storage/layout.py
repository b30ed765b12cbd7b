"""Panoramax's storage layout: the three areas, where a picture's files are, and which picture a file is of.

A key is made only from a validated UUID, so nothing read from input can reach outside an area's root.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol
from uuid import UUID

KINDS = ("permanent", "derivates", "tmp")
# What a prepared picture has in derivates (Panoramax's worker makes both for every picture).
EXPECTED_DERIVATES = ("sd.jpg", "thumb.jpg")
_ID_SHAPE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def picture_key(pic_id: UUID) -> str:
    """Original (permanent, tmp): ``43/66/dd/db/8a71-4f6e-a3d4-cb6b545476bb.jpg``."""
    s = str(pic_id if isinstance(pic_id, UUID) else UUID(str(pic_id)))  # a UUID's text is already canonical
    return f"{s[0:2]}/{s[2:4]}/{s[4:6]}/{s[6:8]}/{s[9:]}.jpg"


def derivates_folder(pic_id: UUID) -> str:
    """Derivatives folder: the original's key without ``.jpg``."""
    return picture_key(pic_id)[: -len(".jpg")]


def picture_id_from_key(key: str) -> UUID | None:
    """The picture a key (relative to an area root) is named after, or None if it is not in the layout."""
    parts = key.split("/")
    if len(parts) < 5 or any(len(p) != 2 for p in parts[:4]):
        return None
    rest = parts[4][: -len(".jpg")] if len(parts) == 5 and parts[4].endswith(".jpg") else parts[4]
    candidate = "".join(parts[:4]) + "-" + rest
    if not _ID_SHAPE.match(candidate):
        return None
    return UUID(candidate)


def picture_of(kind: str, key: str) -> UUID | None:
    """The picture a stored file belongs to in an area of ``kind``: an original ``aa/bb/cc/dd/rest.jpg`` in
    permanent and tmp, a file under the folder ``aa/bb/cc/dd/rest/`` in derivates; None for anything else."""
    if kind == "derivates":
        parts = key.split("/")
        return picture_id_from_key("/".join(parts[:5])) if len(parts) >= 6 else None
    return picture_id_from_key(key) if key.endswith(".jpg") and key.count("/") == 4 else None


LASTING = ("Permission denied", "Operation not permitted", "AccessDenied", "never deleted", "never followed",
           "Read-only file system")  # fmt: skip


def lasting(reason: str) -> bool:
    """Whether a deletion failed for a reason no retry fixes (a permission, a folder where a file should be,
    a link to a folder): its job fails at once instead of being retried until it gives up."""
    return any(mark in reason for mark in LASTING)


@dataclass
class DeleteResult:
    """What a deletion did: files removed per kind (that existed: a key sent for a file already gone is not
    a file removed), files already gone per kind, and the pictures that failed (with the reason)."""

    files: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    failed: dict[UUID, str] = field(default_factory=dict)
    already_gone: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def add(self, other: DeleteResult) -> None:
        for kind, n in other.files.items():
            self.files[kind] = self.files.get(kind, 0) + n
        for kind, n in other.already_gone.items():
            self.already_gone[kind] = self.already_gone.get(kind, 0) + n
        self.failed.update(other.failed)


@dataclass(frozen=True)
class StoredFile:
    """An entry of an area's listing. ``kind``: ``file`` (a regular file, or an S3 object), ``symlink`` (a
    symbolic link that is not to a folder: removed itself, never its target), ``folder-link`` (a symbolic
    link to a folder: never followed, never deleted), ``special`` (a FIFO, socket or device: never touched).
    ``size`` is the entry's own (``lstat``): a link's, never its target's."""

    key: str  # relative to the area root
    size: int
    modified: datetime
    kind: str = "file"


class Unreadable(Exception):
    """A file where a picture's file should be cannot be read: not a regular file, below a symbolic link,
    or refused (permissions). The reason is the message."""


class Target(NamedTuple):
    """A file (or, locally, a picture's derivates folder) to delete: its location as the area's batch
    understands it (an absolute path, or a full S3 key; "" when the area knows it is already gone), the
    picture it is of, and the area's kind."""

    location: str
    owner: UUID | None
    kind: str


class Area(Protocol):
    """One of the three areas, on a local disk or in an S3 bucket. Every area deletes through the same
    interface: ``targets`` says what to delete, and the leader of a batch group deletes them all, so S3
    areas of one bucket share their ``DeleteObjects`` requests."""

    kind: str

    def describe(self) -> str: ...
    def check(self) -> None: ...
    def batch_group(self) -> Hashable: ...
    def targets(self, ids: list[UUID]) -> list[Target]: ...
    def key_targets(self, keys: list[str]) -> list[Target]: ...
    def delete_targets(self, targets: list[Target]) -> DeleteResult: ...
    def count_pictures(self, ids: list[UUID]) -> int: ...
    def list_files(self) -> Iterator[StoredFile]: ...
    def request_counter(self) -> Counter[str] | None: ...
    def abandon(self) -> None: ...
    def unwritable(self, ids: list[UUID]) -> list[str] | None: ...
    def present(self, ids: list[UUID], *, sparse: bool = False) -> set[UUID]: ...
    def absent_reasons(self, ids: list[UUID]) -> dict[UUID, str]: ...
    def md5(self, pic_id: UUID) -> str | None: ...
