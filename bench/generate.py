"""A realistic instance for the benchmarks, written through COPY.

    python -m bench.generate --pictures 1000000 --sequences 10000 [--files local|s3] [--seed 1]

Needs DB_URL (a migrated database) and, with --files, the storage settings (FS_URL…). Deterministic for a
seed. The instance: a few hundred accounts with a long-tailed number of sequences (the first account,
"heavy", holds about 10% of the sequences); sequences of variable length along random walks (3-10 m, 1-3 s
between pictures), some near 60°N, some crossing the antimeridian; ~10% of sequences with shuffled ranks,
~30% of pictures without heading, 10% equirectangular, ~1% of sequences sharing a picture with another,
upload sets for about half of the sequences.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import psycopg

from ops.sequences import derived_stale

EARTH_M_PER_DEG = 111_320.0
START = datetime(2024, 1, 1, tzinfo=UTC)
PLACES = [(2.35, 48.85), (-1.55, 47.21), (4.83, 45.76), (13.40, 52.52), (-3.70, 40.42), (139.69, 35.68)]
NORTH = [(24.94, 60.17), (10.75, 59.91), (18.07, 59.33)]
ANTIMERIDIAN = (179.995, -16.5)


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


@dataclass
class Instance:
    """What a generation wrote, without its rows: the generator streams, it never holds the instance."""

    accounts: list[UUID] = field(default_factory=list)
    heavy_account: UUID | None = None
    sequences: int = 0
    pictures: int = 0
    digest: str = ""  # SHA-256 of every picture id in order: equal digests, equal instances


CHUNK_PICTURES = 50_000  # pictures per COPY round trip: bounds the generator's memory at any size


def _lengths(rng: random.Random, pictures: int, sequences: int) -> list[int]:
    weights = [rng.lognormvariate(0, 0.6) for _ in range(sequences)]
    scale = pictures / sum(weights)
    lengths = [max(1, int(w * scale)) for w in weights]
    diff = pictures - sum(lengths)
    i = 0
    while diff != 0:
        j = i % sequences
        if diff > 0:
            lengths[j] += 1
            diff -= 1
        elif lengths[j] > 1:
            lengths[j] -= 1
            diff += 1
        i += 1
    return lengths


def _sequence_accounts(rng: random.Random, accounts: list[UUID], sequences: int) -> list[UUID]:
    """Every 10th sequence in the heavy account; the others long-tailed (Zipf-like weights 1/k)."""
    others = accounts[1:]
    cum, total = [], 0.0
    for k in range(1, len(others) + 1):
        total += 1.0 / k
        cum.append(total)
    picked = rng.choices(others, cum_weights=cum, k=sequences)
    return [accounts[0] if s % 10 == 0 else picked[s] for s in range(sequences)]


GAP_ODDS = 0.005


def _walk(rng: random.Random, length: int, account: UUID, upload: UUID | None) -> tuple[list[UUID], list[str]]:
    """One sequence's pictures along a random walk, as COPY lines."""
    kind = rng.random()
    if kind < 0.03:
        lon, lat = ANTIMERIDIAN
        heading = 80.0
    else:
        lon, lat = rng.choice(NORTH if kind < 0.15 else PLACES)
        lon += rng.uniform(-0.3, 0.3)
        heading = rng.uniform(0, 360)
    lat += rng.uniform(-0.3, 0.3)
    ts = START.timestamp() + rng.randrange(0, 60_000_000)
    upload_text = str(upload) if upload else "\\N"
    ids, lines = [], []
    for n in range(length):
        pic_id = _uuid(rng)
        ids.append(pic_id)
        pic_type = "equirectangular" if rng.random() < 0.1 else "flat"
        pic_heading = "\\N" if rng.random() < 0.3 else str(int(heading) % 360)
        lines.append(
            f"{pic_id}\tready\t{datetime.fromtimestamp(ts, UTC).isoformat()}\t{pic_heading}\tf\t"
            f"SRID=4326;POINT({lon:.8f} {lat:.8f})\t"
            f'{{"type": "{pic_type}", "originalFileName": "IMG_{n:05}.jpg"}}\t{account}\t{upload_text}\n'
        )
        # mostly 3-10 m apart; now and then a gap in the capture (a tunnel, a stop of the camera), which
        # Panoramax's geometry rule splits the sequence's line at (more than 75 m)
        step = rng.uniform(80, 400) if rng.random() < GAP_ODDS else rng.uniform(3, 10)
        heading = (heading + rng.uniform(-15, 15)) % 360
        lat += step * math.cos(math.radians(heading)) / EARTH_M_PER_DEG
        lon += step * math.sin(math.radians(heading)) / (EARTH_M_PER_DEG * math.cos(math.radians(lat)))
        if lon > 180:
            lon -= 360
        ts += rng.uniform(1, 3)
    return ids, lines


def generate(
    conn: psycopg.Connection,
    pictures: int,
    sequences: int,
    seed: int = 1,
    log: bool = True,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> Instance:
    """Write the instance in chunks of about CHUNK_PICTURES pictures: each chunk's pictures, sequences and
    ranks go through COPY and their derived fields are computed, then the chunk is dropped from memory."""
    rng = random.Random(seed)
    inst = Instance()
    digest = hashlib.sha256()
    nb_accounts = max(2, min(300, sequences // 5))
    inst.accounts = [_uuid(rng) for _ in range(nb_accounts)]
    inst.heavy_account = inst.accounts[0]
    lengths = _lengths(rng, pictures, sequences)
    started = time.monotonic()
    with conn.transaction():
        conn.execute("SET LOCAL synchronous_commit = off")
        # bulk load: skip the per-row foreign-key triggers (the generator writes consistent data; superuser)
        conn.execute("SET LOCAL session_replication_role = replica")
        with conn.cursor().copy("COPY accounts (id, name) FROM STDIN") as copy:
            for i, acc in enumerate(inst.accounts):
                copy.write_row((acc, "heavy" if i == 0 else f"account-{i}"))
        seq_accounts = _sequence_accounts(rng, inst.accounts, sequences)
        upload_sets: dict[int, UUID] = {}
        with conn.cursor().copy("COPY upload_sets (id, account_id, title, completed, dispatched) FROM STDIN") as copy:
            for s in range(0, sequences, 2):
                upload_sets[s] = _uuid(rng)
                copy.write_row((upload_sets[s], seq_accounts[s], f"upload {s}", True, True))
        previous_first: UUID | None = None
        columns = "id, status, ts, heading, heading_computed, geom, metadata, account_id, upload_set_id"
        s = 0
        while s < sequences:
            picture_lines: list[str] = []
            seq_rows: list[tuple[UUID, UUID, UUID | None]] = []
            rank_lines: list[str] = []
            while s < sequences and len(picture_lines) < CHUNK_PICTURES:
                seq_id = _uuid(rng)
                account = seq_accounts[s]
                upload = upload_sets.get(s)
                seq_rows.append((seq_id, account, upload))
                ids, lines = _walk(rng, lengths[s], account, upload)
                picture_lines.extend(lines)
                ranks = list(range(1, lengths[s] + 1))
                if rng.random() < 0.1:
                    rng.shuffle(ranks)
                rank_lines.extend(f"{seq_id}\t{rank}\t{pic_id}\n" for pic_id, rank in zip(ids, ranks, strict=True))
                if previous_first is not None and rng.random() < 0.01:
                    rank_lines.append(f"{seq_id}\t{lengths[s] + 1}\t{previous_first}\n")  # shared with another
                previous_first = ids[0]
                for pic_id in ids:
                    digest.update(pic_id.bytes)
                inst.pictures += len(ids)
                s += 1
            with conn.cursor().copy(f"COPY pictures ({columns}) FROM STDIN") as copy:
                copy.write("".join(picture_lines))
            with conn.cursor().copy("COPY sequences (id, account_id, upload_set_id, status) FROM STDIN") as copy:
                for row in seq_rows:
                    copy.write_row((*row, "ready"))
            with conn.cursor().copy("COPY sequences_pictures (seq_id, rank, pic_id) FROM STDIN") as copy:
                copy.write("".join(rank_lines))
            derived_stale(conn, [r[0] for r in seq_rows])
            inst.sequences += len(seq_rows)
            progress(inst.pictures, pictures)
    conn.execute("ANALYZE")
    inst.digest = digest.hexdigest()
    if log:
        print(
            f"generated {pictures} pictures in {sequences} sequences in {time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )
    return inst


def picture_ids(url: str, limit: int | None = None) -> Iterator[UUID]:
    """The instance's picture ids in id order, read through a server-side cursor (never all in memory)."""
    with psycopg.connect(url) as conn, conn.cursor(name="picture_ids") as cur:
        cur.itersize = 10_000
        cur.execute("SELECT id FROM pictures ORDER BY id LIMIT %s", (limit,))
        for (pic_id,) in cur:
            yield pic_id


DERIVATIVES = ("thumb.jpg", "sd.jpg", "tiles/0_0.jpg")


def proof_sample(url: str) -> list[UUID]:
    """The ready pictures whose originals a deleting command looks for before it deletes anything (ops's proof
    that the storage is the instance's): a bench that writes only the files it deletes writes these too."""
    from ops import queries
    from ops.storage_check import PROOF_SAMPLE

    with psycopg.connect(url) as c:
        rows = c.execute(queries.statement("storage_check", "ready_sample"), {"n": PROOF_SAMPLE}).fetchall()
    return [r[0] for r in rows]


def write_local_files(root: str, ids: Iterable[UUID]) -> int:
    """A small original, thumb, sd and one tile per picture, in the exact layout."""
    from ops.storage import derivates_folder, picture_key

    count = 0
    data = b"\xff\xd8" + b"x" * 200
    for area in ("permanent", "derivates", "tmp"):
        os.makedirs(os.path.join(root, area), exist_ok=True)
    for pic_id in ids:
        key = picture_key(pic_id)
        original = os.path.join(root, "permanent", key)
        os.makedirs(os.path.dirname(original), exist_ok=True)
        with open(original, "wb") as f:
            f.write(data)
        folder = os.path.join(root, "derivates", derivates_folder(pic_id))
        os.makedirs(os.path.join(folder, "tiles"), exist_ok=True)
        for name in DERIVATIVES:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        count += 1 + len(DERIVATIVES)
    return count


def write_s3_files(client: object, bucket: str, prefix: str, ids: Iterable[UUID]) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from ops.storage import derivates_folder, picture_key

    keys = []
    for pic_id in ids:
        keys.append(f"{prefix}permanent/{picture_key(pic_id)}")
        keys += [f"{prefix}derivates/{derivates_folder(pic_id)}/{d}" for d in DERIVATIVES]

    def put(key: str) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=b"\xff\xd8 small")  # type: ignore[attr-defined]

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, keys))
    return len(keys)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pictures", type=int, required=True)
    parser.add_argument("--sequences", type=int, required=True)
    parser.add_argument("--files", choices=["local", "s3"])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    url = os.environ.get("DB_URL")
    if not url:
        print("error: set DB_URL to a migrated database", file=sys.stderr)
        return 2
    with psycopg.connect(url, autocommit=True) as conn:
        generate(conn, args.pictures, args.sequences, args.seed)
    if args.files:
        from ops import storage
        from ops.settings import Settings

        settings = Settings(fs_url=os.environ.get("FS_URL"))
        store = storage.from_settings(settings)
        area = store.areas["permanent"]
        if args.files == "local":
            root = os.environ["FS_URL"]
            n = write_local_files(root, picture_ids(url))
        else:
            loc = area.loc  # type: ignore[attr-defined]
            n = write_s3_files(area.client, loc.bucket, loc.prefix[: -len("permanent/")], picture_ids(url))  # type: ignore[attr-defined]
        print(f"wrote {n} files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
