"""Picture storage: Panoramax's layout on a local disk or on S3, behind one face, ``Storage``.

Modules: ``layout`` (keys, the picture a key is of, the ``Area`` interface), ``local`` and ``s3`` (the two
kinds of area, chosen by URL scheme from ``BACKENDS``). Settings: ``FS_URL``, or all three ``FS_*_URL``. It
knows only files: what compares them with rows lives in ``ops.storage_check`` and ``ops.storage_orphans``.
"""

from __future__ import annotations

import importlib
import re
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from urllib.parse import urlsplit
from uuid import UUID

from ops.config import mask_url
from ops.errors import ConfigError, StorageUnavailable
from ops.settings import Settings
from ops.storage.layout import KINDS, Area, DeleteResult, Target, derivates_folder, picture_key

AreaFactory = Callable[[str, str, str, Settings, dict[object, object]], Area]

__all__ = ["KINDS", "Area", "DeleteResult", "Storage", "derivates_folder", "from_settings", "picture_key"]

SEPARATE_VARS = {"permanent": "FS_PERMANENT_URL", "derivates": "FS_DERIVATES_URL", "tmp": "FS_TMP_URL"}
PROOF_VALID_S = 60.0  # a long-running worker proves the location again after this long


@dataclass
class Storage:
    """The three areas of a Panoramax storage."""

    areas: dict[str, Area]
    proven_at: float | None = None  # when the location was last proven (``prove``); None: never

    def check(self) -> None:
        for area in self.areas.values():
            area.check()

    def needs_proof(self) -> bool:
        return self.proven_at is None or time.monotonic() - self.proven_at > PROOF_VALID_S

    def prove(self, sample: list[UUID]) -> None:
        """Before the first delete of a run: the location is the one the database describes, where the
        files of ``sample`` (a few pictures ready to be served) are, as the layout says. An area that holds
        none of them is a volume that did not mount, an empty bucket or a wrong prefix (or, on S3, something
        that is not S3 answering): deleting rows then would strand their files, so nothing is deleted.
        Originals only: derivates may be made on demand (Panoramax's ``PICTURE_PROCESS_DERIVATES_STRATEGY``)
        and tmp is empty between uploads, so neither can be proven by its files (what a derivates volume that
        did not mount keeps is regenerable, and ``ops storage orphans`` finds it once it is back)."""
        if sample:
            permanent = self.areas["permanent"]
            if not permanent.present(sorted(sample), sparse=True):
                raise StorageUnavailable(
                    f"{permanent.describe()} holds none of {len(sample)} ready pictures' originals: is the volume "
                    "mounted, the location right? (ops health says the same; nothing was deleted)"
                )
        self.proven_at = time.monotonic()

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

    def abandon(self) -> None:
        """A stopping command: no further request to the storage (S3 calls in flight end at their read
        timeout); what is left waits for the next run."""
        for area in self.areas.values():
            area.abandon()

    def requests(self) -> dict[str, int]:
        """Requests sent to S3 by operation (areas sharing a client are counted once)."""
        counters = {id(c): c for c in (a.request_counter() for a in self.areas.values()) if c is not None}
        return dict(sum(counters.values(), Counter()))


MALFORMED_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(?!//)")


def _scheme(url: str) -> str:
    if "://" in url:
        return url.partition("://")[0]
    if MALFORMED_SCHEME.match(url):  # "s3:/bucket": a typo, never a local path named "s3:"
        raise ConfigError(f"malformed storage URL {mask_url(url)}: write scheme://… (s3://bucket/prefix, file:///path)")
    return ""


def _join(url: str, sub: str) -> str:
    """``sub`` below the path of ``url`` (its query, as S3's ``endpoint_url``, stays at the end)."""
    parts = urlsplit(url)
    if not parts.scheme:
        return url.rstrip("/") + "/" + sub
    return parts._replace(path=parts.path.rstrip("/") + "/" + sub).geturl()


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


# The kinds of storage, by URL scheme: "module:function" building an area (kind, url, the setting that named
# it, the settings, a cache the areas of one storage share). A new backend is one line here and its module.
BACKENDS = {"": "ops.storage.local:open_area", "file": "ops.storage.local:open_area",
            "s3": "ops.storage.s3:open_area"}  # fmt: skip


def from_settings(settings: Settings) -> Storage:
    """The storage Panoramax's variables describe, each area by the backend of its URL's scheme (imported
    only when used: boto3 costs ~0.3 s)."""
    urls = _urls(settings)
    areas: dict[str, Area] = {}
    shared: dict[object, object] = {}
    for kind in KINDS:
        url = urls[kind]
        target = BACKENDS.get(_scheme(url))
        if target is None:
            raise ConfigError(f"unsupported storage URL {mask_url(url)}: use a path, file://… or s3://…")
        module, _, function = target.partition(":")
        open_area: AreaFactory = getattr(importlib.import_module(module), function)
        setting = f"FS_URL {mask_url(settings.fs_url)}" if settings.fs_url else f"{SEPARATE_VARS[kind]} {mask_url(url)}"
        areas[kind] = open_area(kind, url, setting, settings, shared)
    return Storage(areas)
