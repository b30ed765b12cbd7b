"""Fast tests of the pure functions: storage layout, S3 URLs, cleanup plans, checksums, named SQL, status."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from ops import queries
from ops.cleanup import CleanupPlan
from ops.errors import ConfigError, QueryFileError, UsageError
from ops.jobs import next_refresh, validate_cron
from ops.schema.files import normalized_checksum
from ops.schema.status import MigrationStatus, SchemaStatus
from ops.storage.layout import KINDS, derivates_folder, picture_id_from_key, picture_key, picture_of
from ops.storage.s3 import parse_s3_url

PIC = UUID("4366dddb-8a71-4f6e-a3d4-cb6b545476bb")


def test_keys_follow_panoramax_layout_and_lead_back_to_the_picture():
    assert picture_key(PIC) == "43/66/dd/db/8a71-4f6e-a3d4-cb6b545476bb.jpg"
    assert derivates_folder(PIC) == "43/66/dd/db/8a71-4f6e-a3d4-cb6b545476bb"
    assert picture_id_from_key(picture_key(PIC)) == PIC
    assert picture_of("permanent", picture_key(PIC)) == PIC
    assert picture_of("tmp", picture_key(PIC)) == PIC
    assert picture_of("derivates", f"{derivates_folder(PIC)}/tiles/0_0.jpg") == PIC
    assert picture_of("derivates", f"{derivates_folder(PIC)}/sd.jpg") == PIC


@pytest.mark.parametrize(
    "kind, key",
    [
        ("permanent", "README.txt"),
        ("permanent", "43/66/dd/db/not-a-uuid.jpg"),
        ("permanent", "43/66/dd/db/8a71-4f6e-a3d4-cb6b545476bb.png"),
        ("permanent", "43/66/dd/8a71-4f6e-a3d4-cb6b545476bb.jpg"),
        ("permanent", "43/66/dd/db/8a71-4f6e-a3d4-cb6b545476bb/sd.jpg"),
        ("derivates", "43/66/dd/db/8a71-4f6e-a3d4-cb6b545476bb.jpg"),
        ("derivates", "../../etc/passwd/x/y"),
        ("tmp", "4366/dd/db/8a71/x.jpg"),
    ],
)
def test_files_outside_the_layout_belong_to_no_picture(kind, key):
    assert picture_of(kind, key) is None


def test_a_key_is_only_made_from_a_uuid():
    with pytest.raises(ValueError):
        picture_key("../../etc/passwd")  # type: ignore[arg-type]


def test_s3_urls_in_panoramax_form():
    loc = parse_s3_url("s3://KEY:S%2FECRET@pictures/geovisio/root?endpoint_url=http://minio:9000&region=eu-west-3")
    assert (loc.bucket, loc.prefix) == ("pictures", "geovisio/root/")
    assert (loc.access_key, loc.secret_key) == ("KEY", "S/ECRET")
    assert (loc.endpoint_url, loc.region) == ("http://minio:9000", "eu-west-3")
    bare = parse_s3_url("s3://pictures")
    assert (bare.bucket, bare.prefix, bare.access_key, bare.endpoint_url) == ("pictures", "", None, None)


def test_an_s3_url_without_bucket_is_refused_without_showing_the_secret():
    with pytest.raises(ConfigError) as e:
        parse_s3_url("s3://KEY:VERYSECRET@/prefix")
    assert "VERYSECRET" not in str(e.value) and "no bucket" in str(e.value)


@pytest.mark.parametrize(
    "flags, database, kinds",
    [
        ({}, True, KINDS),
        ({"full": True}, True, KINDS),
        ({"database": True}, True, ()),
        ({"cache": True}, False, ("derivates",)),
        ({"permanent": True}, False, ("permanent",)),
        ({"cache": True, "permanent": True}, False, ("permanent", "derivates")),
        ({"database": True, "cache": True}, True, ("derivates",)),
        ({"full": True, "cache": True}, True, KINDS),
    ],
)
def test_cleanup_flags_pick_what_goes(flags, database, kinds):
    given = {"full": False, "database": False, "cache": False, "permanent": False, **flags}
    plan = CleanupPlan.from_flags(None, **given)
    assert (plan.database, plan.kinds) == (database, kinds)


def test_checksum_ignores_line_ends_and_trailing_blanks_only():
    base = normalized_checksum("CREATE TABLE a (id int);\nSELECT 1;\n")
    assert normalized_checksum("CREATE TABLE a (id int);  \r\nSELECT 1;\r\n\n") == base
    assert normalized_checksum("CREATE TABLE a (id bigint);\nSELECT 1;\n") != base
    assert normalized_checksum("CREATE TABLE a  (id int);\nSELECT 1;\n") != base


def test_named_statements_are_fetched_by_name_never_by_position():
    text = "-- header\n\n-- name: first\nSELECT 1;\n\n-- name: second\n-- why\nSELECT 2;\n"
    assert queries.split_named("t.sql", text) == {"first": "SELECT 1", "second": "-- why\nSELECT 2"}
    with pytest.raises(QueryFileError, match="holds 2 statements"):
        queries.split_named("t.sql", "-- name: both\nSELECT 1;\nSELECT 2;\n")
    with pytest.raises(QueryFileError, match="two statements are named a"):
        queries.split_named("t.sql", "-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")
    with pytest.raises(QueryFileError, match="no '-- name:'"):
        queries.split_named("t.sql", "SELECT 1;")


def test_every_packaged_query_file_follows_the_rule():
    for file in queries.files():
        try:
            statements = queries.named(file)
        except QueryFileError:
            statements = {"": queries.load(file)}
        assert statements and all(s.strip() for s in statements.values()), file


def test_schema_status_counts_and_names_what_is_wrong():
    state = SchemaStatus(
        [MigrationStatus("0001", "applied"), MigrationStatus("0002", "pending"), MigrationStatus("0003", "pending")]
    )
    assert state.counts == {"applied": 1, "pending": 2}
    assert not state.up_to_date and state.problems() == "2 pending"
    assert SchemaStatus([MigrationStatus("0001", "applied")]).up_to_date


def test_refresh_schedule_follows_the_cron_from_the_last_refresh():
    now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert next_refresh("0 2 * * *", None, now) == now
    assert next_refresh("0 2 * * *", datetime(2026, 11, 28, 2, 0, 5, tzinfo=UTC), now) == datetime(
        2026, 11, 29, 2, 0, tzinfo=UTC
    )
    with pytest.raises(UsageError, match="valid cron"):
        validate_cron("every day")
