"""An area on the local filesystem. Deletion is idempotent (a file already gone counts as done) and prunes
the emptied parent folders up to the area root."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections import Counter
from collections.abc import Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from ops.errors import StorageError
from ops.storage.layout import (
    EXPECTED_DERIVATES,
    DeleteResult,
    StoredFile,
    Target,
    derivates_folder,
    picture_id_from_key,
    picture_key,
)

READ_CHUNK = 1 << 20
# unlink and rmdir wait on the filesystem (its journal, its discards), not on the CPU: 8 threads delete
# 2.8x faster than one on the 2-core bench machine (ext4 with discard); see README, Storage layout.
DELETE_THREADS = 8


class LocalArea:
    """An area on the local filesystem."""

    def __init__(self, kind: str, root: Path, shared_root: Path | None = None) -> None:
        self.kind = kind
        self.root = root
        self.shared_root = shared_root  # FS_URL's root: its missing sub-folders are created, as Panoramax does

    def describe(self) -> str:
        return str(self.root)

    def check(self) -> None:
        if not self.root.is_dir() and self.shared_root is not None and self.shared_root.is_dir():
            self.root.mkdir(exist_ok=True)
        if not self.root.is_dir():
            raise StorageError(f"{self.kind} storage folder {self.root} does not exist")

    def request_counter(self) -> Counter[str] | None:
        return None

    def batch_group(self) -> Hashable:
        return ("local", str(self.root))

    def _path(self, pic_id: UUID) -> Path:
        return self.root / (derivates_folder(pic_id) if self.kind == "derivates" else picture_key(pic_id))

    def targets(self, ids: list[UUID]) -> list[Target]:
        return [Target(str(self._path(pic_id)), pic_id, self.kind) for pic_id in ids]

    def key_targets(self, keys: list[str]) -> list[Target]:
        inside = [k for k in keys if self.root in (self.root / k).resolve().parents]  # never outside the root
        return [Target(os.path.normpath(self.root / k), picture_id_from_key(k), self.kind) for k in inside]

    def delete_targets(self, targets: list[Target]) -> DeleteResult:
        """Delete the targets with DELETE_THREADS threads. Targets are grouped by their first folder under the
        root and each group is deleted by one thread, so no two threads ever prune the same folder (a race
        there could leave an emptied folder behind)."""
        prefix = self._prefix()
        groups: dict[str, list[Target]] = {}
        for target in targets:
            groups.setdefault(target.location[len(prefix) :].split("/", 1)[0], []).append(target)
        result = DeleteResult()
        with ThreadPoolExecutor(max_workers=max(1, min(DELETE_THREADS, len(groups)))) as pool:
            for group, outcomes in zip(groups.values(), pool.map(self._delete_group, groups.values()), strict=True):
                for target, (removed, failure) in zip(group, outcomes, strict=True):
                    result.files[target.kind] += removed
                    if failure is not None and target.owner is not None:
                        result.failed.setdefault(target.owner, failure)
        return result

    def _prefix(self) -> str:
        return str(self.root).rstrip("/") + "/"

    def _delete_group(self, targets: list[Target]) -> list[tuple[int, str | None]]:
        return [self._delete_one(t.location, t.kind) for t in targets]

    def _delete_one(self, path: str, kind: str) -> tuple[int, str | None]:
        """Delete a file, or a folder and all it holds, then prune its emptied parents: (files removed,
        failure). A file already gone counts as done. Plain strings: Path objects cost a third of the time."""
        try:
            os.unlink(path)
            outcome: tuple[int, str | None] = (1, None)
        except FileNotFoundError:
            outcome = (0, None)
        except IsADirectoryError:
            outcome = self._remove_tree(path, kind)
        except OSError as e:
            return 0, f"{kind}: {e.strerror}: {path}"
        self._prune(path)
        return outcome

    def _remove_tree(self, folder: str, kind: str) -> tuple[int, str | None]:
        removed, failure = 0, None
        for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    os.unlink(path)
                    removed += 1
                except FileNotFoundError:
                    pass
                except OSError as e:
                    failure = failure or f"{kind}: {e.strerror}: {path}"
            for name in dirnames:
                try:
                    os.rmdir(os.path.join(dirpath, name))
                except OSError:
                    pass
        try:
            os.rmdir(folder)
        except OSError as e:
            failure = failure or f"{kind}: cannot remove {folder}: {e.strerror}"
        return removed, failure

    def _prune(self, path: str) -> None:
        """Remove emptied parent folders of ``path``, up to (not including) the area root."""
        prefix = self._prefix()
        parent = os.path.dirname(path)
        while parent.startswith(prefix) and len(parent) > len(prefix):
            try:
                os.rmdir(parent)
            except OSError:
                return
            parent = os.path.dirname(parent)

    def count_pictures(self, ids: list[UUID]) -> int:
        count = 0
        for pic_id in ids:
            path = self._path(pic_id)
            if self.kind == "derivates":
                count += sum(len(files) for _, _, files in os.walk(path))
            elif path.is_file():
                count += 1
        return count

    def present(self, ids: list[UUID], *, sparse: bool = False) -> set[UUID]:
        """The pictures of ``ids`` whose original (permanent, tmp) or expected derivates are here."""
        # Plain strings and os.path.isfile: building Path objects cost 60% of a check (profiled at 200k pictures).
        root, is_file = str(self.root), os.path.isfile
        if self.kind == "derivates":
            return {
                i for i in ids if all(is_file(f"{root}/{derivates_folder(i)}/{name}") for name in EXPECTED_DERIVATES)
            }
        return {i for i in ids if is_file(f"{root}/{picture_key(i)}")}

    def md5(self, pic_id: UUID) -> str | None:
        """The MD5 of a picture's original, read in chunks (None when it is gone)."""
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with open(self._path(pic_id), "rb") as f:
                while chunk := f.read(READ_CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            return None
        return digest.hexdigest()

    def wipe(self) -> DeleteResult:
        """Delete everything under the root (the root folder itself stays)."""
        result = DeleteResult()
        if not self.root.is_dir():
            return result
        for entry in os.scandir(self.root):
            if entry.is_dir(follow_symlinks=False):
                for _, _, files in os.walk(entry.path):
                    result.files[self.kind] += len(files)
                shutil.rmtree(entry.path)
            else:
                result.files[self.kind] += 1
                os.unlink(entry.path)
        return result

    def list_files(self) -> Iterator[StoredFile]:
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath, name)
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                yield StoredFile(
                    path.relative_to(self.root).as_posix(), st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)
                )
