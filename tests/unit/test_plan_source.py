"""ops.plan.source: the migrations of a geovisio archive, unpacked into a cache that several runs share."""

from __future__ import annotations

import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ops.plan import source


def _wheel(path: Path, count: int) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(count):
            archive.writestr(f"geovisio/migrations/2024{n:04d}_01_m{n}.sql", f"CREATE TABLE t{n} (id int);\n")
            archive.writestr(f"geovisio/migrations/2024{n:04d}_01_m{n}.rollback.sql", f"DROP TABLE t{n};\n")
        archive.writestr("geovisio/__init__.py", "")
    return path


def test_runs_sharing_a_cache_unpack_an_archive_once_and_each_sees_it_whole(tmp_path: Path) -> None:
    """Two plans (or two test workers) unpacking the same release at once: each gets the whole folder, and
    nothing half-written is left in the cache."""
    wheel = _wheel(tmp_path / "geovisio-9.9.9-py3-none-any.whl", 200)
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(8) as pool:
        folders = list(pool.map(lambda _n: source.from_archive(wheel, cache), range(8)))
    assert len(set(folders)) == 1
    assert len(list(folders[0].glob("*.sql"))) == 400
    assert [p.name for p in (cache / "migrations").iterdir()] == [wheel.name]  # no .partial folder left
