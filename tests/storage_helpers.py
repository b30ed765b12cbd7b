"""Real picture files for the tests, in Panoramax's layout: on a local folder or in moto's S3 over HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import boto3

from ops.storage import derivates_folder, picture_key

DERIVATIVES = ("thumb.jpg", "sd.jpg", "tiles/0_0.jpg", "tiles/1_0.jpg")


def picture_files(pic_id: UUID) -> set[str]:
    """Every file a prepared picture has: ``area/key``."""
    key = picture_key(pic_id)
    folder = derivates_folder(pic_id)
    return {f"permanent/{key}", f"tmp/{key}"} | {f"derivates/{folder}/{d}" for d in DERIVATIVES}


@dataclass
class Store:
    """One storage under test: its settings for ops, and real file access to check outcomes."""

    kind: str
    env: dict[str, str]
    root: Path | None = None
    bucket: str | None = None
    prefix: str = ""
    client: object = None
    written: set[str] = field(default_factory=set)

    def write(self, rel: str, data: bytes = b"\xff\xd8 picture bytes") -> None:
        if self.root is not None:
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + rel, Body=data)  # type: ignore[attr-defined]

    def add_picture(self, pic_id: UUID) -> set[str]:
        files = picture_files(pic_id)
        for rel in files:
            self.write(rel)
        return files

    def files(self) -> set[str]:
        if self.root is not None:
            return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()}
        found = set()
        paginator = self.client.get_paginator("list_objects_v2")  # type: ignore[attr-defined]
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            found |= {o["Key"][len(self.prefix) :] for o in page.get("Contents", [])}
        return found

    def dirs(self) -> set[str]:
        assert self.root is not None
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_dir()}


def local_store(tmp_path: Path) -> Store:
    root = tmp_path / "storage"
    for area in ("permanent", "derivates", "tmp"):
        (root / area).mkdir(parents=True)
    return Store("local", {"FS_URL": str(root)}, root=root)


def s3_store(endpoint: str, bucket: str = "pictures") -> Store:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return Store("s3", {"FS_URL": f"s3://{bucket}/geovisio"}, bucket=bucket, prefix="geovisio/", client=client)


def prepared_sequence(conn, store: Store, n: int, lon: float = 1.0, name: str = "alice") -> tuple[UUID, list]:
    """A sequence of ``n`` prepared pictures (no job left) of a new account, every picture with its files."""
    from tests.factories import make_account, make_sequence, prepared, walk

    pics = walk(lon, 1.0, n)
    seq = make_sequence(conn, make_account(conn, name), pics)
    prepared(conn)
    for p in pics:
        store.add_picture(p.id)
    return seq, pics


def deny_deletion(store: Store) -> None:
    """A bucket policy refusing every DeleteObject: a real failing deletion."""
    import json

    statement = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:DeleteObject",
        "Resource": f"arn:aws:s3:::{store.bucket}/*",
    }
    store.client.put_bucket_policy(Bucket=store.bucket, Policy=json.dumps({"Statement": [statement]}))  # type: ignore[attr-defined]


def env(url: str, store: Store | None = None, **more: str) -> dict[str, str]:
    """The environment of a command run against ``url`` (and ``store``), with a signing secret."""
    return {"DB_URL": url, "FLASK_SECRET_KEY": "k" * 40, **(store.env if store else {}), **more}
