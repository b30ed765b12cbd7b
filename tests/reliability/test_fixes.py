"""The promises an adversarial run broke (issue: reliability), each with the case that broke it."""

from __future__ import annotations

import json
import threading
import time
from uuid import uuid4

import psycopg
import pytest

from ops.config import mask_url
from tests.conftest import run_ops, start_ops
from tests.factories import make_account, make_sequence, prepared, walk
from tests.storage_helpers import deny_deletion, local_store, prepared_sequence


def env(url, store):
    return {"DB_URL": url, **store.env}


def test_rerun_of_an_interrupted_cleanup_recognises_empty_and_all_shared_sequences(ops, conn, db_url, tmp_path):
    store = local_store(tmp_path)
    account = make_account(conn)
    empty = conn.execute("INSERT INTO sequences (account_id) VALUES (%s) RETURNING id", (account,)).fetchone()[0]
    s1_pics = walk(1.0, 1.0, 3)
    s1 = make_sequence(conn, account, s1_pics)
    s2_pics = walk(2.0, 2.0, 3)
    s2 = make_sequence(conn, account, s2_pics)
    only_shared = make_sequence(conn, account, s2_pics[:2])  # T: every picture also in S2
    prepared(conn)
    for p in s1_pics + s2_pics:
        store.add_picture(p.id)
    ids = [str(i) for i in (empty, s1, s2, only_shared)]
    first = ops("cleanup", *ids, "--enqueue-only", env=env(db_url, store))
    assert first.exit_code == 0, first.stderr
    again = ops("cleanup", *ids, "--json", env=env(db_url, store))
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["finished_earlier_delete_jobs"] == 6
    assert store.files() == set()
    # and once every job is done (the worker ran), a third run still knows them
    third = ops("cleanup", *ids, env=env(db_url, store))
    assert third.exit_code == 0, third.stderr


def test_two_cleanups_at_once_never_strand_a_shared_picture(conn, db_url, tmp_path):
    store = local_store(tmp_path)
    account = make_account(conn)
    a, b, shared = walk(1.0, 1.0, 3)
    s1 = make_sequence(conn, account, [a, shared])
    s5 = make_sequence(conn, account, [b, shared])
    prepared(conn)
    for p in (a, b, shared):
        store.add_picture(p.id)
    with psycopg.connect(db_url) as holder:  # holds both rows while both cleanups start
        holder.execute("SELECT 1 FROM sequences WHERE id = ANY(%s) FOR UPDATE", ([s1, s5],))
        procs = [start_ops("cleanup", str(s), env=env(db_url, store)) for s in (s1, s5)]
        time.sleep(2.0)
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert conn.execute("SELECT count(*) FROM pictures").fetchone()[0] == 0
    assert store.files() == set()


@pytest.mark.parametrize(
    "url, secret",
    [("postgresql://postgres:Ab#cd-Secret@127.0.0.1/db", "cd-Secret"),
     ("postgresql://postgres:Ab/cd?x-Secret@127.0.0.1/db", "x-Secret"),
     ("postgresql://postgres:A@b%2-Secret@h/db", "-Secret")],
)  # fmt: skip
def test_passwords_with_unencoded_characters_never_leak(ops, url, secret):
    result = ops("-v", "db", "status", env={"DB_URL": url})
    assert result.exit_code == 1
    assert secret not in result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "malformed DB_URL postgresql://postgres:***@" in result.stderr


def test_s3_secret_with_slashes_is_read_whole_and_never_shown(ops, db_url, s3):
    url = f"s3://KEYID:Sec/ret/With/Slashes99@nobucket/x?endpoint_url={s3}"
    result = ops("-v", "cleanup", str(uuid4()), "--cache", env={"DB_URL": db_url, "FS_URL": url})
    assert result.exit_code == 1
    assert "Slashes99" not in result.stdout + result.stderr and "ret/With" not in result.stderr
    assert "S3 bucket 'nobucket' does not exist" in result.stderr
    assert mask_url(url).startswith("s3://***:***@nobucket/x")  # the access key id is masked too


def test_views_lost_by_a_killed_upgrade_are_noticed(ops, ops_conn, ops_db_url):
    ops_conn.execute("DROP MATERIALIZED VIEW pictures_grid")  # what a kill between migrations and views leaves
    status = ops("db", "status", "--check", env={"DB_URL": ops_db_url})
    assert status.exit_code == 1 and "view pictures_grid is missing" in status.stderr
    refresh = ops("refresh", env={"DB_URL": ops_db_url})
    assert refresh.exit_code == 1 and "view pictures_grid is missing" in refresh.stderr
    assert ops("db", "upgrade", env={"DB_URL": ops_db_url}).exit_code == 0
    assert ops("db", "status", "--check", env={"DB_URL": ops_db_url}).exit_code == 0


def test_a_dotenv_that_is_not_utf8_is_one_line(tmp_path, ops_db_url):
    (tmp_path / ".env").write_bytes(b"DB_URL=" + ops_db_url.encode() + b"\nNAME=caf\xe9\n")
    proc = run_ops("db", "status", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "is not UTF-8 text (byte 0xe9" in proc.stderr


def test_failing_s3_deletion_is_reported_per_picture_and_attempted_once(ops, conn, db_url, s3):
    from tests.storage_helpers import s3_store

    store = s3_store(s3)
    seq, _pics = prepared_sequence(conn, store, 5)
    deny_deletion(store)  # every DeleteObjects key fails
    result = ops("cleanup", str(seq), "--json", env=env(db_url, store))
    summary = json.loads(result.stdout)
    if summary["pictures_with_files_not_deleted"] == 0:
        pytest.skip("this moto does not enforce bucket policies")
    assert result.exit_code == 1 and "could not be deleted" in result.stderr  # a failure is never exit 0
    assert summary["pictures_with_files_not_deleted"] == 5
    assert summary["delete_jobs"]["jobs"] == 5  # each job attempted once in the command
    # a refusal is no transient error: the jobs failed at once (history), none left to retry forever
    assert summary["delete_jobs"]["given_up"] == 5 and conn.execute("SELECT count(*) FROM job_queue").fetchone()[0] == 0


def test_unreachable_storage_leaves_every_job_waiting_with_its_attempts(ops, conn, db_url, s3, tmp_path):
    store = local_store(tmp_path)
    seq, _pics = prepared_sequence(conn, store, 4)  # with their files: the location is proven
    from ops import storage, worker
    from ops.settings import Settings

    first = ops("cleanup", str(seq), "--enqueue-only", env={"DB_URL": db_url, **store.env})
    assert first.exit_code == 0, first.stderr
    dead = storage.from_settings(Settings(fs_url="s3://b/x?endpoint_url=http://127.0.0.1:9"))  # nothing listens
    result = worker.drain(conn, dead, batch_size=10)
    assert (result.jobs, result.retried_later, len(result.deletion.failed)) == (0, 0, 0)
    assert "cannot reach the S3 endpoint" in (result.storage_unavailable or "")
    assert conn.execute("SELECT count(*), max(nb_errors) FROM job_queue").fetchone() == (4, 0)
    assert sum(dead.requests().values()) >= 5  # every HTTP attempt counted, botocore's retries included


def test_worker_summary_keeps_batches_done_before_a_reconnect(conn, db_url, tmp_path):
    store = local_store(tmp_path)
    seq, _pics = prepared_sequence(conn, store, 30)
    from tests.conftest import start_ops as run

    assert run("cleanup", str(seq), "--enqueue-only", env=env(db_url, store)).wait() == 0
    proc = run("worker", "--batch-size", "1", "--json", env=env(db_url, store))

    def kill_its_backend() -> None:  # once it has done a batch (its start may take seconds on a busy machine)
        with psycopg.connect(db_url, autocommit=True) as c:
            for _ in range(600):
                if c.execute("SELECT count(*) FROM job_history").fetchone()[0]:
                    break
                time.sleep(0.05)
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'ops@%%'"
                      " AND pid <> pg_backend_pid()")  # fmt: skip

    killer = threading.Thread(target=kill_its_backend)
    killer.start()
    for _ in range(300):
        if conn.execute("SELECT count(*) FROM job_queue").fetchone()[0] == 0:
            break
        time.sleep(0.1)
    killer.join()
    import signal

    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    done_in_history = conn.execute("SELECT count(*) FROM job_history WHERE error IS NULL").fetchone()[0]
    assert done_in_history == 30
    assert json.loads(out)["done"] == 30, err


def test_many_unknown_ids_give_a_short_line_and_ids_come_from_stdin(ops, conn, db_url):
    unknown = [str(uuid4()) for _ in range(40_000)]
    result = ops("sequences", "reorder", "-", input="\n".join(unknown) + "\n", env={"DB_URL": db_url})
    assert result.exit_code == 1
    assert len(result.stderr) < 600 and "40,000 ids are no sequence" in result.stderr and "39,990 more" in result.stderr
    empty = ops("cleanup", "-", "--yes", input="\n# nothing\n", env={"DB_URL": db_url})
    assert empty.exit_code == 2 and "stdin holds no sequence id" in empty.stderr
    bad = ops("sequences", "reorder", "-", input=f"{unknown[0]}\nnope\n", env={"DB_URL": db_url})
    assert bad.exit_code == 2 and "stdin line 2" in bad.stderr


def test_control_characters_in_account_names_are_escaped(ops, conn, db_url):
    name = "evil\x1b[2J\rname"
    created = ops("user", name, "--create", env={"DB_URL": db_url})
    assert created.exit_code == 0, created.stderr
    shown = ops("user", name, env={"DB_URL": db_url})
    assert "\x1b" not in created.stdout + shown.stdout and "\r" not in created.stdout + shown.stdout
    assert "evil\\x1b[2J\\rname" in shown.stdout


SECRET = "a-very-long-secret-key-for-tests-0123456789"


def test_tokens_verify_accepts_ours_and_says_why_others_fail(ops, conn, db_url):
    import base64

    env_ = {"DB_URL": db_url, "FLASK_SECRET_KEY": SECRET}
    token = ops("default-account-tokens", "get", env=env_).stdout.strip()
    ok = ops("tokens", "verify", token, env=env_)
    assert ok.exit_code == 0 and ok.stdout.startswith("valid: token ") and "Default account" in ok.stdout
    header, payload, signature = token.split(".")

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    other_key = ops("default-account-tokens", "get", env={**env_, "FLASK_SECRET_KEY": SECRET + "x"}).stdout.strip()
    cases = {
        other_key: "signature does not match",
        f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.": "algorithm 'none' refused",
        f"{header}.{b64({'iss': 'geovisio', 'sub': str(uuid4())})}.{signature}": "signature does not match",
        "not-a-token": "not a JWT",
    }
    for bad, reason in cases.items():
        result = ops("tokens", "verify", bad, env=env_)
        assert result.exit_code == 1 and reason in result.stderr, (bad, result.stderr)
    conn.execute("DELETE FROM tokens")
    revoked = ops("tokens", "verify", token, env=env_)
    assert revoked.exit_code == 1 and "does not exist any more" in revoked.stderr
