"""Picture storage: Panoramax's layout on a local disk or on S3, behind one face, ``Storage``.

Modules: ``layout`` (keys, the picture a key is of, the ``Area`` interface), ``local`` and ``s3`` (the two
kinds of area), ``orphans`` (files without rows). Settings: ``FS_URL``, or all three ``FS_*_URL``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit
from uuid import UUID

from ops.config import Settings, mask_url
from ops.errors import ConfigError
from ops.storage.layout import KINDS, Area, DeleteResult, Target, derivates_folder, picture_key
from ops.storage.local import LocalArea

if TYPE_CHECKING:
    from ops.storage.s3 import S3Client

__all__ = ["KINDS", "Area", "DeleteResult", "Storage", "derivates_folder", "from_settings", "picture_key"]

SEPARATE_VARS = {"permanent": "FS_PERMANENT_URL", "derivates": "FS_DERIVATES_URL", "tmp": "FS_TMP_URL"}


@dataclass
class Storage:
    """The three areas of a Panoramax storage."""

    areas: dict[str, Area]

    def check(self) -> None:
        for area in self.areas.values():
            area.check()

    def delete_pictures(self, ids_by_kind: dict[str, list[UUID]]) -> DeleteResult:
        """Delete the files of pictures, kind by kind. Areas of one batch group (the S3 areas of one bucket)
        delete together, so S3 requests stay at ceil(keys / 1000) whatever the kinds."""
        groups: dict[Hashable, tuple[Area, list[Target]]] = {}
        for kind, ids in ids_by_kind.items():
            if ids:
                area = self.areas[kind]
                groups.setdefault(area.batch_group(), (area, []))[1].extend(area.targets(ids))
        result = DeleteResult()
        for leader, targets in groups.values():
            result.add(leader.delete_targets(targets))
        return result

    def delete_keys(self, kind: str, keys: list[str]) -> DeleteResult:
        """Delete files of one area by key (relative to its root); a key outside the root is ignored."""
        area = self.areas[kind]
        return area.delete_targets(area.key_targets(keys))

    def requests(self) -> dict[str, int]:
        """Requests sent to S3 by operation (areas sharing a client are counted once)."""
        counters = {id(c): c for c in (a.request_counter() for a in self.areas.values()) if c is not None}
        return dict(sum(counters.values(), Counter()))


def _local_path(url: str) -> Path:
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path)).absolute()
    if "://" in url:
        raise ConfigError(f"unsupported storage URL {mask_url(url)}: use a path, file://… or s3://…")
    return Path(url).absolute()


def _join(url: str, sub: str) -> str:
    if url.startswith("s3://"):
        parts = urlsplit(url)
        path = parts.path.rstrip("/") + "/" + sub
        return parts._replace(path=path).geturl()
    return url.rstrip("/") + "/" + sub


def _urls(settings: Settings) -> dict[str, str]:
    """The URL of each area: FS_URL's sub-folders, or all three FS_*_URL, never both."""
    separate = {
        "permanent": settings.fs_permanent_url,
        "derivates": settings.fs_derivates_url,
        "tmp": settings.fs_tmp_url,
    }
    given = {k: v for k, v in separate.items() if v}
    if settings.fs_url and given:
        names = ", ".join(SEPARATE_VARS[k] for k in given)
        raise ConfigError(
            f"set either FS_URL or FS_PERMANENT_URL + FS_DERIVATES_URL + FS_TMP_URL, not both (got FS_URL and {names})"
        )
    if settings.fs_url:
        return {k: _join(settings.fs_url, k) for k in KINDS}
    if not given:
        raise ConfigError(
            "no storage configured: set FS_URL (one root holding permanent/, derivates/ and tmp/) "
            "or all of FS_PERMANENT_URL, FS_DERIVATES_URL and FS_TMP_URL"
        )
    if len(given) < 3:
        missing = ", ".join(SEPARATE_VARS[k] for k in KINDS if k not in given)
        raise ConfigError(f"{missing} missing: FS_PERMANENT_URL, FS_DERIVATES_URL and FS_TMP_URL go together")
    return {k: v for k, v in given.items() if v}


def from_settings(settings: Settings) -> Storage:
    """The storage Panoramax's variables describe."""
    urls = _urls(settings)
    areas: dict[str, Area] = {}
    clients: dict[tuple[str | None, ...], S3Client] = {}
    for kind in KINDS:
        url = urls[kind]
        if url.startswith("s3://"):
            from ops.storage import s3  # boto3 takes ~0.3 s to import: only S3 storage pays it

            loc = s3.parse_s3_url(url)
            key = (loc.access_key, loc.secret_key, loc.endpoint_url, loc.region)
            if key not in clients:
                limits = s3.Limits(settings.s3_connect_timeout, settings.s3_read_timeout, settings.s3_deadline,
                                   settings.s3_max_attempts)  # fmt: skip
                clients[key] = s3.S3Client(loc, limits)
            areas[kind] = s3.S3Area(kind, loc, clients[key], url)
        else:
            setting = f"FS_URL {_local_path(settings.fs_url)}" if settings.fs_url else f"{SEPARATE_VARS[kind]} {url}"
            areas[kind] = LocalArea(kind, _local_path(url), setting)
    return Storage(areas)
