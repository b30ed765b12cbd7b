"""`ops storage check`: rows whose files are gone, unreadable or altered."""

from __future__ import annotations

import hashlib
import json
from uuid import UUID

import pytest

from ops.storage import derivates_folder, picture_key
from tests.storage_helpers import prepared_sequence


@pytest.fixture
def checked(conn, store):
    """Six ready pictures with all their files and their MD5 recorded."""
    seq, pics = prepared_sequence(conn, store, 6)
    md5 = UUID(hex=hashlib.md5(b"\xff\xd8 picture bytes").hexdigest())  # what storage_helpers writes
    conn.execute("UPDATE pictures SET original_content_md5 = %s, status = 'ready'", (md5,))
    return seq, pics


def remove(store, rel: str) -> None:
    if store.root is not None:
        (store.root / rel).unlink()
    else:
        store.client.delete_object(Bucket=store.bucket, Key=store.prefix + rel)


def test_storage_check_finds_missing_originals_and_derivates_and_corruption(ops, db_url, store, checked):
    seq, pics = checked
    env = {"DB_URL": db_url, **store.env}
    clean = ops("storage", "check", "--verify", "--json", env=env)
    assert clean.exit_code == 0, clean.stderr
    assert json.loads(clean.stdout)["verified"] == 6
    remove(store, f"permanent/{picture_key(pics[0].id)}")
    remove(store, f"derivates/{derivates_folder(pics[1].id)}/sd.jpg")
    store.write(f"permanent/{picture_key(pics[2].id)}", b"\xff\xd8 altered bytes")
    result = ops("storage", "check", "--json", env=env)
    assert result.exit_code == 1 and "1 ready pictures have no original" in result.stderr
    report = json.loads(result.stdout)
    assert report["originals_missing"] == {"ready": 1} and report["derivates_missing"] == 1
    assert report["md5_mismatch"] == 0  # not read without --verify
    verified = json.loads(ops("storage", "check", "--verify", "--json", env=env).stdout)
    assert verified["md5_mismatch"] == 1 and verified["verified"] == 5
    one = json.loads(ops("storage", "check", "--sequence", str(seq), "--json", env=env).stdout)
    assert one["pictures"] == 6 and one["originals_missing"] == {"ready": 1}
