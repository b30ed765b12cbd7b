"""An area under a prefix of an S3 bucket, reached with boto3 through ``ops.storage.s3_client`` (the URL,
the bounds of every call, the shared client); here batching, listing by key range and error mapping.

Deletion sends ``DeleteObjects`` batches of at most 1000 keys, shared by the areas of one bucket, with
botocore's standard retry mode for throttling and 5xx errors. A key already missing counts as deleted.

Every call is bounded: a connect timeout, a read timeout, a number of attempts, and a deadline for the call
with its retries (checked before each attempt, so a call ends within the deadline plus one attempt). A
failure of the whole request (unreachable, too slow, credentials refused, no bucket) is StorageUnavailable,
the storage's; a key S3 refuses inside a DeleteObjects answer is that key's, reported with its own error.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from uuid import UUID

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from ops.config import mask_url
from ops.errors import StorageUnavailable
from ops.storage.layout import (
    EXPECTED_DERIVATES,
    DeleteResult,
    StoredFile,
    Target,
    Unreadable,
    derivates_folder,
    picture_id_from_key,
    picture_key,
    picture_of,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ObjectTypeDef

    from ops.settings import Settings
from ops.storage.s3_client import S3_FAILURES, DeadlineExceeded, Limits, S3Client, S3Location, parse_s3_url

S3_BATCH = 1000
LISTING_THREADS = 8
SPARSE_KEYS = 64  # up to this many keys, one small listing each beats a listing of the range they span


class S3Area:
    """An area under a prefix of an S3 bucket."""

    def __init__(self, kind: str, location: S3Location, client: S3Client, url: str) -> None:
        self.kind = kind
        self.loc = location
        self.client = client
        self.url = url

    def request_counter(self) -> Counter[str] | None:
        return self.client.requests

    def abandon(self) -> None:
        self.client.abandon()

    def unwritable(self, ids: list[UUID]) -> list[str] | None:
        """Unknown on S3 without deleting something: a refused deletion shows at its first run."""
        return None

    def describe(self) -> str:
        return mask_url(self.url)

    def batch_group(self) -> Hashable:
        return ("s3", id(self.client), self.loc.bucket)

    def _error(self, e: BotoCoreError | ClientError) -> StorageUnavailable:
        """A whole request failed: the storage's failure, said for an operator."""
        where = f"s3://{self.loc.bucket}/{self.loc.prefix}"
        if isinstance(e, ClientError):
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket", "404", "NotFound"):
                return StorageUnavailable(f"S3 bucket {self.loc.bucket!r} does not exist ({self.kind} storage {where})")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "Forbidden"):
                return StorageUnavailable(
                    f"S3 refused the credentials for {where} ({code}); check the access key and secret"
                )
            return StorageUnavailable(f"S3 error on {where}: {code}")
        if isinstance(e, NoCredentialsError):
            return StorageUnavailable(
                f"no S3 credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put them in the URL"
            )
        limits = self.client.limits
        if isinstance(e, DeadlineExceeded | ReadTimeoutError | ConnectTimeoutError):
            return StorageUnavailable(
                f"S3 did not answer for {where}: {e} (timeouts: connect {limits.connect_timeout_s:g} s, read "
                f"{limits.read_timeout_s:g} s, deadline {limits.deadline_s:g} s per call; OPS_S3_*)"
            )
        if isinstance(e, EndpointConnectionError):
            return StorageUnavailable(f"cannot reach the S3 endpoint of {where}: {e}")
        return StorageUnavailable(f"S3 error on {where}: {' '.join(str(e).split())}")

    def check(self) -> None:
        try:
            self.client.boto.head_bucket(Bucket=self.loc.bucket)
        except S3_FAILURES as e:
            raise self._error(e) from None

    def _full(self, key: str) -> str:
        return self.loc.prefix + key

    def _list(self, prefix: str) -> Iterator[ObjectTypeDef]:
        paginator = self.client.boto.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.loc.bucket, Prefix=prefix):
                yield from page.get("Contents", [])
        except S3_FAILURES as e:
            raise self._error(e) from None

    def _folder_targets(self, ids: list[UUID]) -> list[Target]:
        def one(pic_id: UUID) -> list[Target]:
            listed = [
                Target(o["Key"], pic_id, self.kind) for o in self._list(self._full(derivates_folder(pic_id)) + "/")
            ]
            return listed or [Target("", pic_id, self.kind)]  # no derivates: already gone

        with ThreadPoolExecutor(max_workers=LISTING_THREADS) as pool:
            return [t for targets in pool.map(one, ids) for t in targets]

    def targets(self, ids: list[UUID]) -> list[Target]:
        """The full keys of these pictures' files in this area (listed for derivates).

        For tmp, usually almost empty, one listing tells which keys exist when the whole area fits in one
        page: phantom keys are then not sent to DeleteObjects."""
        if self.kind == "derivates":
            return self._folder_targets(ids)
        targets = [Target(self._full(picture_key(i)), i, self.kind) for i in ids]
        present = None
        if self.kind == "tmp":
            try:
                page = self.client.boto.list_objects_v2(Bucket=self.loc.bucket, Prefix=self.loc.prefix, MaxKeys=1000)
            except S3_FAILURES as e:
                raise self._error(e) from None
            if not page.get("IsTruncated"):
                present = {o["Key"] for o in page.get("Contents", [])}
        if present is None:
            present = self._existing(sorted(t.location for t in targets))
        # a key known absent is not sent: DeleteObjects says "deleted" for a key that never was
        return [t if t.location in present else Target("", t.owner, t.kind) for t in targets]

    def _existing(self, keys: list[str]) -> set[str]:
        """Which of these full keys (sorted) exist: one listing of the range they span (a batch of a
        whole-instance cleanup: about as many objects as keys), given up for one small listing per key
        (in parallel) when the range holds far more objects than keys (pictures scattered over the bucket)."""
        if not keys:
            return set()
        wanted, found = set(keys), set[str]()
        budget = 3 * len(keys) + S3_BATCH
        rest = keys if len(keys) <= SPARSE_KEYS else []
        if not rest:
            for seen, obj in enumerate(self._range(keys[0][:-1], keys[-1]), start=1):
                if obj["Key"] in wanted:
                    found.add(obj["Key"])
                if seen > budget:
                    rest = [k for k in keys if k > obj["Key"]]
                    break
        if rest:
            with ThreadPoolExecutor(max_workers=LISTING_THREADS) as pool:
                found |= {k for k, ok in zip(rest, pool.map(self._exists, rest), strict=True) if ok}
        return found

    def key_targets(self, keys: list[str]) -> list[Target]:
        return [Target(self._full(k), picture_id_from_key(k), self.kind) for k in keys]

    def _delete_objects(self, keys: list[str]) -> dict[str, str]:
        """One DeleteObjects request (at most 1000 keys); returns the keys that failed, with the reason."""
        try:
            response = self.client.boto.delete_objects(
                Bucket=self.loc.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )
        except S3_FAILURES as e:
            raise self._error(e) from None
        return {
            err.get("Key", ""): f"{err.get('Code')}: {err.get('Message', '')}".strip()
            for err in response.get("Errors", [])
        }

    def delete_targets(self, targets: list[Target]) -> DeleteResult:
        """Delete full keys of this bucket (any area of it), ``S3_BATCH`` keys per request."""
        result = DeleteResult()
        for gone in (t for t in targets if not t.location):
            result.already_gone[gone.kind] += 1
        targets = [t for t in targets if t.location]
        for start in range(0, len(targets), S3_BATCH):
            chunk = targets[start : start + S3_BATCH]
            failed = self._delete_objects([t.location for t in chunk])
            for target in chunk:
                if target.location not in failed:
                    result.files[target.kind] += 1
                elif target.owner is not None:  # each job gets its own object's error
                    result.failed[target.owner] = f"{target.kind}: {target.location}: {failed[target.location]}"
        return result

    def count_pictures(self, ids: list[UUID]) -> int:
        """How many objects a deletion of these pictures' files removes here: what it would find (the same
        listings as the deletion)."""
        return sum(1 for t in self.targets(ids) if t.location)

    def _range(self, first: str, last: str) -> Iterator[ObjectTypeDef]:
        """Objects whose key is from ``first`` to ``last`` (inclusive prefix), a listing page at a time."""
        paginator = self.client.boto.get_paginator("list_objects_v2")
        try:
            pages = paginator.paginate(Bucket=self.loc.bucket, Prefix=self.loc.prefix, StartAfter=first)
            for page in pages:
                for obj in page.get("Contents", []):
                    if obj["Key"] > last:
                        return
                    yield obj
        except S3_FAILURES as e:
            raise self._error(e) from None

    def _exists(self, key: str) -> bool:
        """Whether the object ``key`` exists: a listing of it, whose body must be S3's (a HEAD's 200 says
        nothing about who answered: a proxy's HTML page answers 200 too)."""
        try:
            page = self.client.boto.list_objects_v2(Bucket=self.loc.bucket, Prefix=key, MaxKeys=1)
        except S3_FAILURES as e:
            raise self._error(e) from None
        if "KeyCount" not in page and "Name" not in page:
            raise StorageUnavailable(f"the answer for s3://{self.loc.bucket}/{self.loc.prefix} is not S3's listing")
        return any(o.get("Key") == key for o in page.get("Contents", []))

    def present(self, ids: list[UUID], *, sparse: bool = False) -> set[UUID]:
        """The pictures of ``ids`` (sorted) whose original or expected derivates are here: one listing of
        the key range they span (S3 lists keys in order: pages are compared as a stream, never a whole
        listing in memory), or for ``sparse`` ids (a few sequences) a HEAD per file, in parallel."""
        if not ids:
            return set()
        names = EXPECTED_DERIVATES if self.kind == "derivates" else ("",)

        def key(pic_id: UUID, name: str) -> str:
            return self._full(f"{derivates_folder(pic_id)}/{name}" if name else picture_key(pic_id))

        if sparse:
            with ThreadPoolExecutor(max_workers=LISTING_THREADS) as pool:
                found = pool.map(lambda i: all(self._exists(key(i, n)) for n in names), ids)
                return {i for i, ok in zip(ids, found, strict=True) if ok}
        wanted = set(ids)
        first = self._full(derivates_folder(ids[0])) if self.kind == "derivates" else key(ids[0], "")[:-1]
        last = self._full(derivates_folder(ids[-1]) + "/~") if self.kind == "derivates" else key(ids[-1], "")
        seen: dict[UUID, set[str]] = {}
        for obj in self._range(first, last):
            pic_id = picture_of(self.kind, obj["Key"][len(self.loc.prefix) :])
            if pic_id in wanted:
                seen.setdefault(pic_id, set()).add(obj["Key"].rsplit("/", 1)[1])
        if self.kind == "derivates":
            return {i for i, files in seen.items() if set(EXPECTED_DERIVATES) <= files}
        return set(seen)

    def absent_reasons(self, ids: list[UUID]) -> dict[UUID, str]:
        """S3 has no links, folders or FIFOs: an absent key is missing."""
        return {}

    def md5(self, pic_id: UUID) -> str | None:
        """The MD5 of a picture's original: its ETag when it is one (not a multipart upload), else streamed.
        Unreadable when S3 refuses this object alone (403 on the key)."""
        key = self._full(picture_key(pic_id))
        try:
            head = self.client.boto.head_object(Bucket=self.loc.bucket, Key=key)
            etag = head.get("ETag", "").strip('"')
            if etag and "-" not in etag:
                return etag
            body = self.client.boto.get_object(Bucket=self.loc.bucket, Key=key)["Body"]
            digest = hashlib.md5(usedforsecurity=False)
            for chunk in body.iter_chunks(1 << 20):
                digest.update(chunk)
            return digest.hexdigest()
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            if code in ("403", "AccessDenied", "Forbidden"):
                raise Unreadable(f"S3 refused to read it ({code})") from None
            raise self._error(e) from None
        except BotoCoreError as e:
            raise self._error(e) from None

    def list_files(self) -> Iterator[StoredFile]:
        for obj in self._list(self.loc.prefix):
            yield StoredFile(obj["Key"][len(self.loc.prefix) :], int(obj["Size"]), obj["LastModified"])


def open_area(kind: str, url: str, _setting: str, settings: Settings, shared: dict[object, object]) -> S3Area:
    """An area from an ``s3://`` URL (the storage's backend registry calls it); areas with the same
    credentials and endpoint share one client, so that their deletions share requests."""
    loc = parse_s3_url(url)
    key = ("s3", loc.access_key, loc.secret_key, loc.endpoint_url, loc.region)
    if key not in shared:
        limits = Limits(settings.s3_connect_timeout, settings.s3_read_timeout, settings.s3_deadline,
                        settings.s3_max_attempts)  # fmt: skip
        shared[key] = S3Client(loc, limits, settings.default_region_set)
    client = shared[key]
    assert isinstance(client, S3Client)
    return S3Area(kind, loc, client, url)
