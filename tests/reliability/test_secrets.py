"""Recognisable secrets holding # / ? @ % in every setting; every command's stdout and stderr, on success
and on failure, with -v, are searched for them (raw, percent-encoded and decoded)."""

from __future__ import annotations

from urllib.parse import quote
from uuid import uuid4

import boto3
import pytest

from tests.conftest import CliRunner, cli
from tests.factories import make_account, make_sequence, walk

pytestmark = pytest.mark.category("secrets")

DB_PASSWORD = "Db#Pa/ss?w@rd%42"
S3_SECRET = "S3#Se/cr?et@Key%77"
S3_KEY_ID = "AKIAOPSKEYID0123"
SIGNING_KEY = "Sig#ning/Key?that@is%long-enough-0123456789"


def forms(secret: str) -> list[str]:
    return [secret, quote(secret, safe=""), secret[3:-3]]


COMMANDS = [
    ["db", "status"], ["db", "status", "--json"], ["db", "upgrade", "--dry-run"], ["db", "rollback", "--dry-run"],
    ["refresh"], ["sequences", "reorder"], ["set-sequences-heading"], ["cleanup", str(uuid4())],
    ["cleanup", "--database", "--dry-run"], ["storage", "orphans"], ["worker", "--once"],
    ["default-account-tokens", "get"], ["tokens", "verify", "x.y.z"], ["user", "alice"],
    ["user", "nobody"], ["user", "alice", "--delete-data", "--dry-run"], ["health"], ["health", "--prometheus"],
    ["jobs", "list"], ["doctor"], ["storage", "check"],
]  # fmt: skip


def test_no_secret_in_any_output(scenario, db_url, s3):
    """every command, succeeding and failing, with -v: no database password, S3 secret or signing key"""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as c:
        make_sequence(c, make_account(c, "alice"), walk(1.0, 1.0, 3))
    boto3.client("s3", endpoint_url=s3, region_name="us-east-1").create_bucket(Bucket="pics")
    good_db = db_url.replace("postgres@", f"postgres:{quote(DB_PASSWORD, safe='')}@")
    bad_db = good_db.rsplit("/", 1)[0] + "/no_such_database"
    raw_db = db_url.replace("postgres@", f"postgres:{DB_PASSWORD}@")  # unencoded: a malformed URL
    parts = psycopg.conninfo.conninfo_to_dict(db_url)
    keyword_db = (f"host={parts['host']} port={parts['port']} dbname={parts['dbname']} user=postgres "
                  f"password='{DB_PASSWORD}'")  # fmt: skip
    storages = [
        f"s3://{S3_KEY_ID}:{S3_SECRET}@pics/g?endpoint_url={s3}",
        f"s3://{S3_KEY_ID}:{S3_SECRET}@nobucket/g?endpoint_url={s3}",
        f"s3:/{S3_KEY_ID}:{S3_SECRET}@pics/g",  # one slash: malformed
        f"file://{S3_KEY_ID}:{S3_SECRET}@host/tmp",
    ]
    secrets = forms(DB_PASSWORD) + forms(S3_SECRET) + forms(SIGNING_KEY) + [S3_KEY_ID]
    for command in COMMANDS:
        for url in (good_db, bad_db, raw_db, keyword_db):
            for fs in storages:
                env = {"DB_URL": url, "FS_URL": fs, "FLASK_SECRET_KEY": SIGNING_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
                       "AWS_MAX_ATTEMPTS": "1"}  # fmt: skip
                result = CliRunner().invoke(cli, ["-v", *command], env=env, prog_name="ops")
                output = result.stdout + result.stderr
                leaked = [s for s in secrets if s in output]
                scenario.run((not leaked and "Traceback" not in output) or (not leaked and result.exit_code == 1),
                             f"{command} {url[:30]} {fs[:20]}: leaked {leaked}")  # fmt: skip
    assert scenario.failures == 0, scenario.notes
