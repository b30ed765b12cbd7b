"""Picture storage: Panoramax's layout on a local disk or on S3.

Three areas, as in Panoramax: ``permanent`` (originals), ``derivates`` (a folder per picture: thumb.jpg,
sd.jpg, blurred.jpg, tiles/…) and ``tmp`` (pictures being processed). A key is made only from a validated
UUID, so nothing read from input can reach outside an area's root.

Deletion is idempotent: a file already gone counts as done. Local deletion prunes the emptied parent
folders up to the area root; S3 deletion sends ``DeleteObjects`` batches of at most 1000 keys, with
botocore's standard retry mode for throttling and 5xx errors.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

from ops.config import Settings, mask_url
from ops.errors import ConfigError, OpsError

KINDS = ("permanent", "derivates", "tmp")
S3_BATCH = 1000
_ID_SHAPE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class StorageError(OpsError):
    """The storage is misconfigured or unreachable."""


def picture_key(pic_id: UUID) -> str:
    """Original (permanent, tmp): ``43/66/dd/db/8a71-4f6e-a3d4-cb6b545476bb.jpg``."""
    s = str(UUID(str(pic_id)))
    return f"{s[0:2]}/{s[2:4]}/{s[4:6]}/{s[6:8]}/{s[9:]}.jpg"


def derivates_folder(pic_id: UUID) -> str:
    """Derivatives folder: the original's key without ``.jpg``."""
    return picture_key(pic_id)[: -len(".jpg")]


def picture_id_from_key(key: str) -> UUID | None:
    """The picture a key (relative to an area root) belongs to, or None if it is not in the layout."""
    parts = key.split("/")
    if len(parts) < 5 or any(len(p) != 2 for p in parts[:4]):
        return None
    rest = parts[4][: -len(".jpg")] if len(parts) == 5 and parts[4].endswith(".jpg") else parts[4]
    candidate = "".join(parts[:4]) + "-" + rest
    if not _ID_SHAPE.match(candidate):
        return None
    return UUID(candidate)


@dataclass
class DeleteResult:
    """What a deletion did: files removed per kind, and the pictures that failed (with the reason)."""

    files: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    failed: dict[UUID, str] = field(default_factory=dict)

    def add(self, other: DeleteResult) -> None:
        for kind, n in other.files.items():
            self.files[kind] = self.files.get(kind, 0) + n
        self.failed.update(other.failed)


@dataclass(frozen=True)
class StoredFile:
    key: str  # relative to the area root
    size: int
    modified: datetime


class Area(Protocol):
    kind: str

    def describe(self) -> str: ...
    def check(self) -> None: ...
    def delete_pictures(self, ids: list[UUID]) -> DeleteResult: ...
    def count_pictures(self, ids: list[UUID]) -> int: ...
    def delete_keys(self, keys: list[str]) -> DeleteResult: ...
    def wipe(self) -> DeleteResult: ...
    def list_files(self) -> Iterator[StoredFile]: ...
    def requests(self) -> dict[str, int]: ...


# --- local disk -----------------------------------------------------------------------------------------


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

    def requests(self) -> dict[str, int]:
        return {}

    def _prune(self, path: Path) -> None:
        """Remove emptied parent folders of ``path``, up to (not including) the area root."""
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                os.rmdir(parent)
            except OSError:
                return
            parent = parent.parent

    def _remove_file(self, path: Path, result: DeleteResult, pic_id: UUID | None) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as e:
            if pic_id is not None:
                result.failed[pic_id] = f"{self.kind}: {e.strerror}: {path}"
            return
        result.files[self.kind] += 1

    def _remove_tree(self, folder: Path, result: DeleteResult, pic_id: UUID) -> None:
        if not folder.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
            for name in filenames:
                self._remove_file(Path(dirpath, name), result, pic_id)
            for name in dirnames:
                try:
                    os.rmdir(Path(dirpath, name))
                except OSError:
                    pass
        try:
            os.rmdir(folder)
        except OSError as e:
            if pic_id not in result.failed:
                result.failed[pic_id] = f"{self.kind}: cannot remove {folder}: {e.strerror}"

    def delete_pictures(self, ids: list[UUID]) -> DeleteResult:
        result = DeleteResult()
        for pic_id in ids:
            if self.kind == "derivates":
                target = self.root / derivates_folder(pic_id)
                self._remove_tree(target, result, pic_id)
            else:
                target = self.root / picture_key(pic_id)
                self._remove_file(target, result, pic_id)
            self._prune(target)
        return result

    def count_pictures(self, ids: list[UUID]) -> int:
        count = 0
        for pic_id in ids:
            if self.kind == "derivates":
                folder = self.root / derivates_folder(pic_id)
                count += sum(len(files) for _, _, files in os.walk(folder))
            elif (self.root / picture_key(pic_id)).is_file():
                count += 1
        return count

    def delete_keys(self, keys: list[str]) -> DeleteResult:
        result = DeleteResult()
        for key in keys:
            path = self.root / key
            if self.root not in path.resolve().parents:
                continue  # never outside the root, whatever the key
            self._remove_file(path, result, picture_id_from_key(key))
            self._prune(path)
        return result

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


# --- S3 ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "some/prefix/"
    access_key: str | None
    secret_key: str | None
    endpoint_url: str | None
    region: str | None


def parse_s3_url(url: str) -> S3Location:
    """``s3://[KEY:SECRET@]bucket[/prefix][?endpoint_url=…&region=…]`` (Panoramax's form included)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ConfigError(f"malformed S3 URL {mask_url(url)}: no bucket name")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    bucket = parts.netloc.rpartition("@")[2]
    prefix = parts.path.strip("/")
    return S3Location(
        bucket=bucket,
        prefix=f"{prefix}/" if prefix else "",
        access_key=unquote(parts.username) if parts.username else None,
        secret_key=unquote(parts.password) if parts.password else None,
        endpoint_url=query.get("endpoint_url"),
        region=query.get("region"),
    )


class S3Area:
    """An area under a prefix of an S3 bucket."""

    def __init__(self, kind: str, location: S3Location, client: Any, url: str) -> None:
        self.kind = kind
        self.loc = location
        self.client = client
        self.url = url
        self._requests: dict[str, int] = {}
        client.meta.events.register("before-call.s3", self._count)

    def _count(self, model: Any = None, **_: Any) -> None:
        name = getattr(model, "name", "?")
        self._requests[name] = self._requests.get(name, 0) + 1

    def requests(self) -> dict[str, int]:
        return dict(self._requests)

    def describe(self) -> str:
        return mask_url(self.url)

    def _error(self, e: Exception) -> StorageError:
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        where = f"s3://{self.loc.bucket}/{self.loc.prefix}"
        if isinstance(e, ClientError):
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket", "404", "NotFound"):
                return StorageError(f"S3 bucket {self.loc.bucket!r} does not exist ({self.kind} storage {where})")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "Forbidden"):
                return StorageError(f"S3 refused the credentials for {where} ({code}); check the access key and secret")
            return StorageError(f"S3 error on {where}: {code}")
        if isinstance(e, NoCredentialsError):
            return StorageError(
                f"no S3 credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put them in the URL"
            )
        if isinstance(e, EndpointConnectionError):
            return StorageError(f"cannot reach the S3 endpoint of {where}: {e}")
        return StorageError(f"S3 error on {where}: {type(e).__name__}")

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.loc.bucket)
        except Exception as e:
            raise self._error(e) from None

    def _full(self, key: str) -> str:
        return self.loc.prefix + key

    def delete_full_keys(self, keys: list[str], result: DeleteResult | None = None) -> dict[str, str]:
        """One DeleteObjects request (at most 1000 keys); returns the keys that failed, with the reason.
        A key already missing counts as deleted."""
        assert len(keys) <= S3_BATCH
        try:
            response = self.client.delete_objects(
                Bucket=self.loc.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )
        except Exception as e:
            raise self._error(e) from None
        return {
            err.get("Key", ""): f"{err.get('Code')}: {err.get('Message', '')}".strip()
            for err in response.get("Errors", [])
        }

    def _delete_full_keys(self, keys: list[tuple[str, UUID | None]], result: DeleteResult) -> None:
        for start in range(0, len(keys), S3_BATCH):
            chunk = keys[start : start + S3_BATCH]
            failed = self.delete_full_keys([k for k, _ in chunk])
            for key, pic_id in chunk:
                if key in failed:
                    if pic_id is not None:
                        result.failed[pic_id] = f"{self.kind}: {failed[key]}"
                else:
                    result.files[self.kind] += 1

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.loc.bucket, Prefix=prefix):
                yield from page.get("Contents", [])
        except Exception as e:
            raise self._error(e) from None

    def _folder_keys(self, ids: list[UUID]) -> list[tuple[str, UUID | None]]:
        def one(pic_id: UUID) -> list[tuple[str, UUID | None]]:
            return [(o["Key"], pic_id) for o in self._list(self._full(derivates_folder(pic_id)) + "/")]

        with ThreadPoolExecutor(max_workers=8) as pool:
            return [pair for pairs in pool.map(one, ids) for pair in pairs]

    def keys_for(self, ids: list[UUID]) -> list[tuple[str, UUID | None]]:
        """The full keys of these pictures' files in this area (listed for derivates).

        For tmp, usually almost empty, one listing tells which keys exist when the whole area fits in one
        page: phantom keys are then not sent to DeleteObjects."""
        if self.kind == "derivates":
            return self._folder_keys(ids)
        keys = [(self._full(picture_key(i)), i) for i in ids]
        if self.kind == "tmp":
            try:
                page = self.client.list_objects_v2(Bucket=self.loc.bucket, Prefix=self.loc.prefix, MaxKeys=1000)
            except Exception as e:
                raise self._error(e) from None
            if not page.get("IsTruncated"):
                present = {o["Key"] for o in page.get("Contents", [])}
                keys = [(k, i) for k, i in keys if k in present]
        return keys

    def delete_pictures(self, ids: list[UUID]) -> DeleteResult:
        result = DeleteResult()
        self._delete_full_keys(self.keys_for(ids), result)
        return result

    def count_pictures(self, ids: list[UUID]) -> int:
        if self.kind == "derivates":
            return len(self._folder_keys(ids))
        wanted = {self._full(picture_key(i)) for i in ids}
        prefixes = {k.rsplit("/", 1)[0] + "/" for k in wanted}
        return sum(1 for p in prefixes for o in self._list(p) if o["Key"] in wanted)

    def delete_keys(self, keys: list[str]) -> DeleteResult:
        result = DeleteResult()
        self._delete_full_keys([(self._full(k), picture_id_from_key(k)) for k in keys], result)
        return result

    def wipe(self) -> DeleteResult:
        result = DeleteResult()
        batch: list[tuple[str, UUID | None]] = []
        for obj in self._list(self.loc.prefix):
            batch.append((obj["Key"], None))
            if len(batch) == S3_BATCH:
                self._delete_full_keys(batch, result)
                batch = []
        if batch:
            self._delete_full_keys(batch, result)
        return result

    def list_files(self) -> Iterator[StoredFile]:
        for obj in self._list(self.loc.prefix):
            yield StoredFile(obj["Key"][len(self.loc.prefix) :], int(obj["Size"]), obj["LastModified"])


def _s3_client(loc: S3Location) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=16)
    kwargs: dict[str, Any] = {"config": config}
    if loc.endpoint_url:
        kwargs["endpoint_url"] = loc.endpoint_url
    if loc.region and loc.region != "default":
        kwargs["region_name"] = loc.region
    elif not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        kwargs["region_name"] = "us-east-1"
    if loc.access_key:
        kwargs["aws_access_key_id"] = loc.access_key
        kwargs["aws_secret_access_key"] = loc.secret_key or ""
    return boto3.client("s3", **kwargs)


# --- configuration ------------------------------------------------------------------------------------------

SEPARATE_VARS = {"permanent": "FS_PERMANENT_URL", "derivates": "FS_DERIVATES_URL", "tmp": "FS_TMP_URL"}


@dataclass
class Storage:
    """The three areas of a Panoramax storage."""

    areas: dict[str, Area]

    def check(self) -> None:
        for area in self.areas.values():
            area.check()

    def delete_pictures(self, ids_by_kind: dict[str, list[UUID]]) -> DeleteResult:
        """Delete the files of pictures, kind by kind. S3 areas of one bucket share their DeleteObjects
        batches (up to 1000 keys each, whatever the kind), so requests stay at ceil(keys / 1000)."""
        result = DeleteResult()
        by_bucket: dict[tuple[int, str], list[tuple[str, UUID | None, S3Area]]] = {}
        for kind, ids in ids_by_kind.items():
            if not ids:
                continue
            area = self.areas[kind]
            if isinstance(area, S3Area):
                group = by_bucket.setdefault((id(area.client), area.loc.bucket), [])
                group += [(key, owner, area) for key, owner in area.keys_for(ids)]
            else:
                result.add(area.delete_pictures(ids))
        for group in by_bucket.values():
            for start in range(0, len(group), S3_BATCH):
                chunk = group[start : start + S3_BATCH]
                owners = {key: (owner, area) for key, owner, area in chunk}
                first = chunk[0][2]
                failed_keys = first.delete_full_keys([key for key, _, _ in chunk], result)
                for key, (owner, area) in owners.items():
                    if key in failed_keys:
                        if owner is not None:
                            result.failed[owner] = f"{area.kind}: {failed_keys[key]}"
                    else:
                        result.files[area.kind] += 1
        return result

    def requests(self) -> dict[str, int]:
        total: dict[str, int] = {}
        seen: set[int] = set()
        for area in self.areas.values():
            client = getattr(area, "client", None)
            if client is not None and id(client) in seen:
                continue
            if client is not None:
                seen.add(id(client))
            for name, n in area.requests().items():
                total[name] = total.get(name, 0) + n
        return total


def _local_path(url: str) -> Path:
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path)).absolute()
    if "://" in url:
        raise ConfigError(f"unsupported storage URL {mask_url(url)}: use a path, file://… or s3://…")
    return Path(url).absolute()


def _area(kind: str, url: str, clients: dict[tuple[Any, ...], Any], shared_root: str | None) -> Area:
    if url.startswith("s3://"):
        loc = parse_s3_url(url)
        client_key = (loc.access_key, loc.secret_key, loc.endpoint_url, loc.region)
        if client_key not in clients:
            clients[client_key] = _s3_client(loc)
        return S3Area(kind, loc, clients[client_key], url)
    return LocalArea(kind, _local_path(url), _local_path(shared_root) if shared_root else None)


def _join(url: str, sub: str) -> str:
    if url.startswith("s3://"):
        parts = urlsplit(url)
        path = parts.path.rstrip("/") + "/" + sub
        return parts._replace(path=path).geturl()
    return url.rstrip("/") + "/" + sub


def from_settings(settings: Settings) -> Storage:
    """The storage Panoramax's variables describe: FS_URL, or all three FS_*_URL, never both."""
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
    if not settings.fs_url and not given:
        raise ConfigError(
            "no storage configured: set FS_URL (one root holding permanent/, derivates/ and tmp/) "
            "or all of FS_PERMANENT_URL, FS_DERIVATES_URL and FS_TMP_URL"
        )
    if given and len(given) < 3:
        missing = ", ".join(SEPARATE_VARS[k] for k in KINDS if k not in given)
        raise ConfigError(f"{missing} missing: FS_PERMANENT_URL, FS_DERIVATES_URL and FS_TMP_URL go together")
    urls = {k: _join(settings.fs_url, k) for k in KINDS} if settings.fs_url else given
    clients: dict[tuple[Any, ...], Any] = {}
    return Storage({kind: _area(kind, str(urls[kind]), clients, settings.fs_url) for kind in KINDS})
