"""`ops user` and `ops default-account-tokens get` against a real database (and real storage for files)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from uuid import uuid4

import jwt
import pytest

from tests.factories import Pic, make_account, make_sequence, walk
from tests.storage_helpers import env, local_store, prepared_sequence

SECRET = "a-long-and-random-secret-for-tests-0123456789"


# --- tokens ---------------------------------------------------------------------------------------------


def default_token_id(conn):
    return conn.execute(
        "SELECT t.id FROM tokens t JOIN accounts a ON a.id = t.account_id WHERE a.is_default"
    ).fetchone()[0]


def test_default_token_is_a_panoramax_jwt(ops, conn, db_url):
    result = ops("default-account-tokens", "get", env={"DB_URL": db_url, "FLASK_SECRET_KEY": SECRET})
    assert result.exit_code == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and result.stderr == ""
    header, payload, _ = token.split(".")
    assert header == "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9"
    assert payload.startswith("eyJpc3MiOiJnZW92aXNpbyIsInN1YiI6")
    assert "=" not in token
    assert jwt.get_unverified_header(token) == {"typ": "JWT", "alg": "HS256"}
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims == {"iss": "geovisio", "sub": str(default_token_id(conn))}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SECRET + "x", algorithms=["HS256"])

    # byte-identical to Panoramax's construction, recomputed here with the standard library
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        b64(b'{"typ":"JWT","alg":"HS256"}')
        + "."
        + b64(f'{{"iss":"geovisio","sub":"{default_token_id(conn)}"}}'.encode())
    )
    signature = b64(hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest())
    assert token == f"{signing_input}.{signature}"


def test_legacy_secret_variable_and_same_token_every_time(ops, conn, db_url):
    first = ops("default-account-tokens", "get", env={"DB_URL": db_url, "SECRET_KEY": SECRET}).stdout
    second = ops("default-account-tokens", "get", env={"DB_URL": db_url, "SECRET_KEY": SECRET}).stdout
    assert first == second and first.count(".") == 2


def test_oldest_token_of_several_is_used(ops, conn, db_url):
    default = conn.execute("SELECT id FROM accounts WHERE is_default").fetchone()[0]
    older = conn.execute(
        "INSERT INTO tokens (account_id, description, generated_at) VALUES (%s, 'old', '2020-01-01') RETURNING id",
        (default,),
    ).fetchone()[0]
    conn.execute("INSERT INTO tokens (account_id, description) VALUES (%s, 'newer')", (default,))
    token = ops("default-account-tokens", "get", env={"DB_URL": db_url, "FLASK_SECRET_KEY": SECRET}).stdout.strip()
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == str(older)


def test_token_errors_go_to_stderr_with_exit_1(ops, conn, db_url):
    missing = ops("default-account-tokens", "get", env={"DB_URL": db_url})
    assert missing.exit_code == 1 and missing.stdout == ""
    assert "FLASK_SECRET_KEY" in missing.stderr
    empty = ops("default-account-tokens", "get", env={"DB_URL": db_url, "FLASK_SECRET_KEY": ""})
    assert empty.exit_code == 1 and "empty" in empty.stderr and empty.stdout == ""
    short = ops("default-account-tokens", "get", env={"DB_URL": db_url, "FLASK_SECRET_KEY": "short"})
    assert short.exit_code == 0 and "warning: the secret key is shorter than 32 bytes" in short.stderr
    conn.execute("DELETE FROM tokens WHERE account_id = (SELECT id FROM accounts WHERE is_default)")
    no_token = ops("default-account-tokens", "get", env={"DB_URL": db_url, "FLASK_SECRET_KEY": SECRET})
    assert no_token.exit_code == 1 and no_token.stderr.strip() == "error: the default account has no token"
    conn.execute("UPDATE accounts SET is_default = false")
    no_default = ops("default-account-tokens", "get", env={"DB_URL": db_url, "FLASK_SECRET_KEY": SECRET})
    assert no_default.exit_code == 1 and "no default account" in no_default.stderr


def test_token_capture_in_a_shell_gets_only_the_token(db_url):
    script = 'TOKEN=$("$PY" -m ops -v default-account-tokens get) && printf "%s" "$TOKEN"'
    proc = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True,
        env={"PY": sys.executable, "DB_URL": db_url, "FLASK_SECRET_KEY": SECRET, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert jwt.decode(proc.stdout, SECRET, algorithms=["HS256"])["iss"] == "geovisio"


def test_token_as_json_is_the_same_token_with_its_id(ops, conn, db_url):
    env = {"DB_URL": db_url, "FLASK_SECRET_KEY": SECRET}
    plain = ops("default-account-tokens", "get", env=env)
    data = json.loads(ops("default-account-tokens", "get", "--json", env=env).stdout)
    assert data["token"] == plain.stdout.strip()
    owner = conn.execute(
        "SELECT a.is_default FROM tokens t JOIN accounts a ON a.id = t.account_id WHERE t.id = %s", [data["token_id"]]
    ).fetchone()
    assert owner == (True,)  # a token of the default account
    assert jwt.decode(data["token"], SECRET, algorithms=["HS256"])["sub"] == data["token_id"]


# --- user ----------------------------------------------------------------------------------------------


def test_show_account_by_name_and_id(ops, conn, db_url):
    alice = make_account(conn, "alice")
    make_sequence(conn, alice, walk(1, 1, 3))
    by_name = json.loads(ops("user", "alice", "--json", env={"DB_URL": db_url}).stdout)["account"]
    by_id = json.loads(ops("user", str(alice), "--json", env={"DB_URL": db_url}).stdout)["account"]
    assert by_name == by_id
    assert (by_name["nb_sequences"], by_name["nb_pictures"], by_name["role"], by_name["is_default"]) == (
        1,
        3,
        "user",
        False,
    )
    text = ops("user", "alice", env={"DB_URL": db_url}).stdout
    assert f"id: {alice}" in text and "pictures: 3" in text


def test_create_is_idempotent_and_gives_a_default_token(ops, conn, db_url):
    first = ops("user", "carol", "--create", env={"DB_URL": db_url})
    assert first.exit_code == 0 and first.stdout.startswith("created account carol (")
    again = ops("user", "carol", "--create", env={"DB_URL": db_url})
    assert again.exit_code == 0 and "already exists: nothing changed" in again.stdout
    assert conn.execute("SELECT count(*) FROM accounts WHERE name = 'carol'").fetchone()[0] == 1
    tokens = conn.execute(
        "SELECT description FROM tokens t JOIN accounts a ON a.id = t.account_id WHERE a.name = 'carol'"
    ).fetchall()
    assert tokens == [("default token",)]


def test_create_needs_a_name(ops, conn, db_url):
    result = ops("user", str(uuid4()), "--create", env={"DB_URL": db_url})
    assert result.exit_code == 2 and "a name must be provided to create an account" in result.stderr


def test_set_role(ops, conn, db_url):
    alice = make_account(conn, "alice")
    result = ops("user", "alice", "--set-role", "admin", env={"DB_URL": db_url})
    assert result.exit_code == 0
    assert result.stdout.strip() == f"role of alice ({alice}) set to admin"
    assert conn.execute("SELECT role::text FROM accounts WHERE id = %s", (alice,)).fetchone()[0] == "admin"
    bad = ops("user", "alice", "--set-role", "superuser", env={"DB_URL": db_url})
    assert bad.exit_code == 2 and "'admin', 'user'" in bad.stderr


def test_create_with_invalid_role_creates_nothing(ops, conn, db_url):
    result = ops("user", "dave", "--create", "--set-role", "root", env={"DB_URL": db_url})
    assert result.exit_code == 2
    assert conn.execute("SELECT count(*) FROM accounts WHERE name = 'dave'").fetchone()[0] == 0


def test_create_then_failing_role_rolls_back_the_account(ops, conn, db_url):
    # the name exists twice: create says "exists", the role step is ambiguous -> nothing changes at all
    make_account(conn, "twin")
    make_account(conn, "twin")
    result = ops("user", "twin", "--create", "--set-role", "admin", env={"DB_URL": db_url})
    assert result.exit_code == 1
    assert "2 accounts are named 'twin'" in result.stderr
    assert conn.execute("SELECT count(*) FROM accounts WHERE name = 'twin' AND role = 'admin'").fetchone()[0] == 0


def test_ambiguous_and_unknown_accounts(ops, conn, db_url):
    ids = sorted([make_account(conn, "same"), make_account(conn, "same")], key=str)
    result = ops("user", "same", env={"DB_URL": db_url})
    assert result.exit_code == 1
    assert all(str(i) in result.stderr for i in ids) and "give the id" in result.stderr
    assert result.stderr.count("(user, created 20") == 2 and result.stderr.count(" 0 pictures)") == 2
    assert ops("user", "nobody", env={"DB_URL": db_url}).exit_code == 1
    unknown = ops("user", str(uuid4()), env={"DB_URL": db_url})
    assert unknown.exit_code == 1 and "no account with id" in unknown.stderr


def test_names_are_plain_data(ops, conn, db_url):
    for name in ["'; DROP TABLE pictures; --", 'Zoë "quoted" 📷', "%(seq_ids)s"]:
        created = ops("user", name, "--create", "--json", env={"DB_URL": db_url})
        assert created.exit_code == 0, created.stderr
        assert json.loads(created.stdout)["account"]["name"] == name
    assert conn.execute("SELECT to_regclass('pictures') IS NOT NULL").fetchone()[0]


def test_user_refuses_a_pending_schema(ops, empty_db_url):
    result = ops("user", "alice", env={"DB_URL": empty_db_url})
    assert result.exit_code == 1 and "database schema needs an update" in result.stderr


def test_delete_data_tombstones_sequences_and_queues_file_deletion(ops, conn, db_url, store):
    alice, bob = make_account(conn, "alice"), make_account(conn, "bob")
    upload_set = conn.execute(
        "INSERT INTO upload_sets (account_id, title) VALUES (%s, 'u') RETURNING id", (alice,)
    ).fetchone()[0]
    alice_seqs = [make_sequence(conn, alice, walk(1 + s, 1, 5, seed=s)) for s in range(3)]
    conn.execute("UPDATE pictures SET upload_set_id = %s WHERE account_id = %s", (upload_set, alice))
    conn.execute(
        "UPDATE sequences s SET geom = ST_Multi(ST_MakeLine(ST_MakePoint(0, 0), ST_MakePoint(1, 1)))::geometry(MultiLineString, 4326) WHERE account_id = %s",
        (alice,),
    )
    bob_seq = make_sequence(conn, bob, walk(9, 9, 4))
    alice_pics = [r[0] for r in conn.execute("SELECT id FROM pictures WHERE account_id = %s", (alice,))]
    bob_pics = [r[0] for r in conn.execute("SELECT id FROM pictures WHERE account_id = %s", (bob,))]
    bob_files = set().union(*(store.add_picture(p) for p in bob_pics))
    for p in alice_pics:
        store.add_picture(p)
    env = {"DB_URL": db_url, **store.env}

    dry = ops("user", "alice", "--delete-data", "--dry-run", "--json", env=env)
    assert json.loads(dry.stdout)["delete_data"]["pictures_deleted"] == 15
    assert conn.execute("SELECT count(*) FROM pictures WHERE account_id = %s", (alice,)).fetchone()[0] == 15

    result = ops("user", "alice", "--delete-data", "--batch-size", "4", "--json", env=env)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)["delete_data"]
    assert (summary["sequences_marked_deleted"], summary["pictures_deleted"], summary["jobs_enqueued"]) == (3, 15, 15)
    assert summary["batches"] == 4 and summary["upload_sets_deleted"] == 1
    statuses = conn.execute(
        "SELECT status::text, geom IS NOT NULL FROM sequences WHERE id = ANY(%s)", (alice_seqs,)
    ).fetchall()
    assert statuses == [("deleted", True)] * 3  # tombstones keep their geometry
    assert conn.execute("SELECT count(*) FROM pictures WHERE account_id = %s", (alice,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM job_queue WHERE task = 'delete'").fetchone()[0] == 15
    assert conn.execute("SELECT count(*) FROM tokens WHERE account_id = %s", (alice,)).fetchone()[0] == 1
    worker = ops("worker", "--once", env=env)
    assert worker.exit_code == 0, worker.stderr
    assert store.files() == bob_files
    assert conn.execute("SELECT status::text FROM sequences WHERE id = %s", (bob_seq,)).fetchone()[0] == "ready"
    assert conn.execute("SELECT count(*) FROM pictures WHERE account_id = %s", (bob,)).fetchone()[0] == 4


def test_delete_data_wait_deletes_files_in_the_command(ops, conn, db_url, tmp_path):
    store = local_store(tmp_path)
    alice = make_account(conn, "alice")
    make_sequence(conn, alice, [Pic(1, 1), Pic(1.001, 1)])
    for (p,) in conn.execute("SELECT id FROM pictures").fetchall():
        store.add_picture(p)
    result = ops("user", "alice", "--delete-data", "--wait", env={"DB_URL": db_url, **store.env})
    assert result.exit_code == 0, result.stderr
    assert store.files() == set()
    assert conn.execute("SELECT count(*) FROM job_queue").fetchone()[0] == 0
    again = ops("user", "alice", "--delete-data", "--json", env={"DB_URL": db_url})
    assert json.loads(again.stdout)["delete_data"]["pictures_deleted"] == 0  # re-run: nothing left, no error


def test_no_output_contains_the_secret(ops, conn, db_url):
    env = {"DB_URL": db_url, "FLASK_SECRET_KEY": SECRET}
    for args in (
        ["-v", "default-account-tokens", "get"],
        ["-v", "user", "Default account", "--json"],
        ["-v", "db", "status"],
    ):
        result = ops(*args, env=env)
        assert SECRET not in result.stdout + result.stderr


def test_delete_data_speaks_in_the_past_once_done(ops, conn, db_url, tmp_path):
    store = local_store(tmp_path / "storage")
    prepared_sequence(conn, store, 2, name="carol")
    dry = ops("user", "carol", "--delete-data", "--dry-run", env=env(db_url))
    assert "would mark 1 sequences deleted" in dry.stdout
    done = ops("user", "carol", "--delete-data", env=env(db_url))
    assert done.stdout.startswith("marked 1 sequences deleted\ndeleted 2 pictures and queued 2 file deletion jobs")
