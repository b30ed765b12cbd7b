"""An area on the local filesystem. (Long because the symbolic-link policy below touches every read and
delete of a file, and is best read in one place.) Deletion is idempotent (a file already gone counts as done) and prunes
the emptied parent folders up to the area root.

The symbolic-link policy (the same for every command that reads or deletes): the area root itself may be a
link (operators put ``permanent/`` on another disk). Below it, ops never follows a link to a folder (it
neither reads nor deletes through one, and reports what it kept); a link where a file is expected is
removed itself, never its target; FIFOs, sockets and devices are never opened. Nothing is ever created:
a missing area is a volume that did not mount, and says so.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections import Counter
from collections.abc import Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit
from uuid import UUID

from ops.errors import StorageError, StorageUnavailable
from ops.storage.layout import (
    EXPECTED_DERIVATES,
    DeleteResult,
    StoredFile,
    Target,
    Unreadable,
    derivates_folder,
    picture_id_from_key,
    picture_key,
)

if TYPE_CHECKING:
    from ops.settings import Settings

READ_CHUNK = 1 << 20
# unlink and rmdir wait on the filesystem (its journal, its discards), not on the CPU: 8 threads delete
# 2.8x faster than one on the 2-core bench machine (ext4 with discard); see docs/configuration.md, Storage layout.
DELETE_THREADS = 8
GONE = -1  # a target already gone (counted apart from the files removed)


def _removable(path: str) -> bool:
    """A regular file or a symbolic link (removed itself): what a deletion removes where a file is expected."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def not_regular(mode: int) -> str:
    """What a non-regular file is, for people."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symbolic link (not followed)"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or other special file"


class LocalArea:
    """An area on the local filesystem."""

    def __init__(self, kind: str, root: Path, setting: str = "") -> None:
        self.kind = kind
        self.root = root
        self.setting = setting  # how the root was configured, for messages: "FS_URL /data/geovisio"
        self._root = str(root).rstrip("/") or "/"
        self._prefix = self._root.rstrip("/") + "/"

    def describe(self) -> str:
        return str(self.root)

    def check(self) -> None:
        """The area's folder exists (a link to a folder is fine). Never created: an absent folder is most
        likely a storage volume that did not mount, and deleting rows then would strand their files."""
        if self.root.is_dir():
            return
        what = "is not a folder" if self.root.exists() else "does not exist"
        where = (
            f"{self.kind}/ {what} under {self.setting}"
            if self.setting.startswith("FS_URL")
            else f"{self.setting or self.kind} {what}"
        )
        raise StorageError(f"{where}: is the volume mounted? (ops never creates storage folders)")

    def _still_there(self) -> None:
        """Before a deletion: the area folder is there (a volume unmounted meanwhile would make every file
        look already deleted). Its absence is the storage's failure, not the jobs'."""
        try:
            self.check()
        except StorageError as e:
            raise StorageUnavailable(str(e)) from None

    def request_counter(self) -> Counter[str] | None:
        return None

    def abandon(self) -> None:
        """Nothing to abandon: a local deletion is never waiting on a peer."""

    def unwritable(self, ids: list[UUID]) -> list[str]:
        """The folders this process may not delete from (removing a file takes write and search permission
        on its folder): the area's root, and the folders of these pictures' files."""
        folders = [self._root] + [os.path.dirname(self._path(i)) for i in ids]
        if self.kind == "derivates":
            folders += [self._path(i) for i in ids]
        found = []
        for folder in dict.fromkeys(folders):
            if os.path.isdir(folder) and not os.access(folder, os.W_OK | os.X_OK):
                st = os.stat(folder)
                found.append(f"{self.kind}/{folder[len(self._prefix):]}: owned by {st.st_uid}:{st.st_gid}, mode "
                             f"{stat.filemode(st.st_mode)}, not writable by uid {os.geteuid()}")  # fmt: skip
        return found

    def batch_group(self) -> Hashable:
        return ("local", self._root)

    def _path(self, pic_id: UUID) -> str:
        return self._prefix + (derivates_folder(pic_id) if self.kind == "derivates" else picture_key(pic_id))

    def _linked_parent(self, path: str, checked: set[str]) -> str | None:
        """The first folder between the root and ``path`` that is a symbolic link, or None (all real, or
        missing: then there is nothing below it). ``checked`` caches the folders found real."""
        current = self._root.rstrip("/")
        for part in path[len(self._prefix) :].split("/")[:-1]:
            current = f"{current}/{part}"
            if current in checked:
                continue
            try:
                if stat.S_ISLNK(os.lstat(current).st_mode):
                    return current
            except OSError:
                return None
            checked.add(current)
        return None

    def _kept_below_link(self, link: str) -> str:
        return f"{self.kind}: kept: {link[len(self._prefix) :]} is a symbolic link to a folder, never followed"

    def targets(self, ids: list[UUID]) -> list[Target]:
        return [Target(self._path(pic_id), pic_id, self.kind) for pic_id in ids]

    def key_targets(self, keys: list[str]) -> list[Target]:
        inside = [k for k in keys if k and not k.startswith("/") and ".." not in k.split("/")]  # never outside
        return [Target(self._prefix + k, picture_id_from_key(k), self.kind) for k in inside]

    def delete_targets(self, targets: list[Target]) -> DeleteResult:
        """Delete the targets with DELETE_THREADS threads. Targets are grouped by their first folder under the
        root and each group is deleted by one thread, so no two threads ever prune the same folder (a race
        there could leave an emptied folder behind)."""
        if targets:
            self._still_there()
        groups: dict[str, list[Target]] = {}
        for target in targets:
            groups.setdefault(target.location[len(self._prefix) :].split("/", 1)[0], []).append(target)
        result = DeleteResult()
        with ThreadPoolExecutor(max_workers=max(1, min(DELETE_THREADS, len(groups)))) as pool:
            for group, outcomes in zip(groups.values(), pool.map(self._delete_group, groups.values()), strict=True):
                for target, (removed, failure) in zip(group, outcomes, strict=True):
                    if removed == GONE:
                        result.already_gone[target.kind] += 1
                        continue
                    result.files[target.kind] += removed
                    if failure is not None and target.owner is not None:
                        result.failed.setdefault(target.owner, failure)
        if any(result.already_gone.values()):
            self._still_there()  # files missing because the area itself went (unmounted mid-batch): no job is done
        return result

    def _delete_group(self, targets: list[Target]) -> list[tuple[int, str | None]]:
        checked: set[str] = set()
        return [self._delete_one(t.location, t.kind, checked) for t in targets]

    def _delete_one(self, path: str, kind: str, checked: set[str]) -> tuple[int, str | None]:
        """Delete a picture's file (a link: the link itself), or its derivates folder and all it holds, then
        prune its emptied parents: (entries removed, failure). A file already gone counts as done. Nothing
        is deleted through a link to a folder, and nothing that is not a regular file where a file is expected
        (a folder, a FIFO, a socket, a device: the failure says what). Plain strings: Path objects cost a
        third of the time."""
        link = self._linked_parent(path, checked)
        if link is not None:
            return 0, self._kept_below_link(link)
        try:
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode) and kind == "derivates":
                outcome = self._remove_tree(path, kind)
            elif stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                os.unlink(path)
                outcome = (1, None)
            else:
                return 0, f"{kind}: kept {path}: {not_regular(mode)} where a picture's file should be, never deleted"
        except FileNotFoundError:
            self._prune(path)  # (an interrupted run may have left its emptied parents)
            return GONE, None
        except OSError as e:
            return 0, f"{kind}: {e.strerror}: {path}"
        self._prune(path)
        return outcome

    def _remove_tree(self, folder: str, kind: str) -> tuple[int, str | None]:
        """Everything under ``folder`` (a picture's derivatives), then the folder; a link inside is removed
        itself (``os.walk`` does not descend into links)."""
        removed, failure = 0, None
        for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    mode = os.lstat(path).st_mode
                    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                        failure = failure or f"{kind}: kept {path}: {not_regular(mode)}, never deleted"
                        continue
                    os.unlink(path)
                    removed += 1
                except FileNotFoundError:
                    pass
                except OSError as e:
                    failure = failure or f"{kind}: {e.strerror}: {path}"
            for name in dirnames:
                path = os.path.join(dirpath, name)
                try:
                    if os.path.islink(path):
                        os.unlink(path)
                        removed += 1
                    else:
                        os.rmdir(path)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    failure = failure or f"{kind}: cannot remove {path}: {e.strerror}"
        try:
            os.rmdir(folder)
        except OSError as e:
            failure = failure or f"{kind}: cannot remove {folder}: {e.strerror}"
        return removed, failure

    def _prune(self, path: str) -> None:
        """Remove emptied parent folders of ``path``, up to (not including) the area root."""
        parent = os.path.dirname(path)
        while parent.startswith(self._prefix) and len(parent) > len(self._prefix):
            try:
                os.rmdir(parent)
            except OSError:
                return
            parent = os.path.dirname(parent)

    def count_pictures(self, ids: list[UUID]) -> int:
        """How many entries a deletion of these pictures' files would remove here (nothing through a link)."""
        count, checked = 0, set[str]()
        for pic_id in ids:
            path = self._path(pic_id)
            if self._linked_parent(path, checked) is not None:
                continue
            if self.kind == "derivates" and os.path.isdir(path) and not os.path.islink(path):
                for dirpath, dirnames, files in os.walk(path):
                    count += sum(1 for f in files if _removable(os.path.join(dirpath, f)))
                    count += sum(1 for d in dirnames if os.path.islink(os.path.join(dirpath, d)))
            elif _removable(path):  # what the deletion removes: a file or a link, never a folder or a FIFO
                count += 1
        return count

    def _regular(self, path: str, checked: set[str]) -> bool:
        if self._linked_parent(path, checked) is not None:
            return False
        try:
            return stat.S_ISREG(os.lstat(path).st_mode)
        except OSError:
            return False

    def present(self, ids: list[UUID], *, sparse: bool = False) -> set[UUID]:
        """The pictures of ``ids`` whose original (permanent, tmp) or expected derivates are here, as
        regular files (not links) in real folders."""
        # Plain strings and lstat: building Path objects cost 60% of a check (profiled at 200k pictures).
        checked: set[str] = set()
        if self.kind == "derivates":
            return {
                i for i in ids if all(self._regular(f"{self._path(i)}/{name}", checked) for name in EXPECTED_DERIVATES)
            }
        return {i for i in ids if self._regular(self._path(i), checked)}

    def absent_reasons(self, ids: list[UUID]) -> dict[UUID, str]:
        """Of pictures ``present`` did not find, those whose original's place holds something else (a
        folder, a link, a FIFO…) or lies below a link to a folder, with what it is. Truly missing ones are
        left out."""
        reasons, checked = {}, set[str]()
        for pic_id in ids:
            path = self._path(pic_id)
            link = self._linked_parent(path, checked)
            if link is not None:
                reasons[pic_id] = f"below {link[len(self._prefix) :]}, a symbolic link to a folder (not followed)"
                continue
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                continue
            except OSError as e:
                reasons[pic_id] = e.strerror or str(e)
                continue
            if not stat.S_ISREG(mode):
                reasons[pic_id] = not_regular(mode) if os.path.exists(path) or not stat.S_ISLNK(mode) else (
                    "a dangling symbolic link"
                )  # fmt: skip
        return reasons

    def md5(self, pic_id: UUID) -> str | None:
        """The MD5 of a picture's original, read in chunks (None when it is gone). Unreadable when its place
        holds no regular file, lies below a link, or cannot be read: a FIFO is never waited on."""
        path = self._path(pic_id)
        link = self._linked_parent(path, set())
        if link is not None:
            raise Unreadable(f"below {link[len(self._prefix) :]}, a symbolic link to a folder (not followed)")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise Unreadable(
                    "a dangling symbolic link" if not os.path.exists(path) else "a symbolic link (not followed)"
                ) from None
            raise Unreadable(e.strerror or str(e)) from None
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise Unreadable(not_regular(mode))
            try:
                while chunk := f.read(READ_CHUNK):
                    digest.update(chunk)
            except OSError as e:
                raise Unreadable(e.strerror or str(e)) from None
        return digest.hexdigest()

    def list_files(self) -> Iterator[StoredFile]:
        """Every entry under the root that is not a real folder, in key order, without following links."""
        if not self.root.is_dir():
            return
        folders = [self._root]
        while folders:
            folder = folders.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
            except OSError:
                continue
            files: list[os.DirEntry[str]] = []
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                else:
                    files.append(entry)
            for entry in reversed(files):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    kind = "file"
                elif stat.S_ISLNK(st.st_mode):
                    kind = "folder-link" if os.path.isdir(entry.path) else "symlink"
                else:
                    kind = "special"
                key = entry.path[len(self._prefix) :]
                yield StoredFile(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), kind)


def open_area(kind: str, url: str, setting: str, _settings: Settings, _shared: dict[object, object]) -> LocalArea:
    """An area from a path or a ``file://`` URL (the storage's backend registry calls it)."""
    path = Path(unquote(urlsplit(url).path)) if url.startswith("file://") else Path(url)
    return LocalArea(kind, path.absolute(), setting)
