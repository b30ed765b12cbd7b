"""ops.storage.s3: S3 URLs in Panoramax's form."""

from __future__ import annotations

from uuid import UUID

import pytest

from ops.errors import ConfigError
from ops.storage.s3_client import parse_s3_url

PIC = UUID("4366dddb-8a71-4f6e-a3d4-cb6b545476bb")


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
