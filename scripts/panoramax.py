"""A database built by Panoramax's own migrations, for the tests and the benchmarks: those of the geovisio
wheel on the package registry, applied with yoyo's API as ``flask db upgrade`` applies them. Nothing of
Panoramax's SQL is copied into this repository: the wheel is downloaded once into ``.ops/cache``."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

GEOVISIO_VERSION = "2.15.1"
WHEEL = f"geovisio-{GEOVISIO_VERSION}-py3-none-any.whl"
CACHE = Path(__file__).resolve().parent.parent / ".ops" / "cache"


def wheel() -> Path:
    """The geovisio wheel, downloaded from the package registry on first use."""
    path = CACHE / WHEEL
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", f"geovisio=={GEOVISIO_VERSION}", "-d",
             str(CACHE)],
            capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0:  # pip's own chatter is shown only when the download fails
            raise RuntimeError(f"pip download geovisio=={GEOVISIO_VERSION} failed: {proc.stderr.strip()[-2000:]}")
    return path


def migrations_dir(into: Path) -> Path:
    """Panoramax's migration files, extracted from the wheel into ``into``."""
    folder = into / "geovisio-migrations"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        with zipfile.ZipFile(wheel()) as archive:
            for name in archive.namelist():
                if name.startswith("geovisio/migrations/") and name.endswith(".sql"):
                    (folder / Path(name).name).write_bytes(archive.read(name))
    return folder


def build(url: str, folder: Path) -> int:
    """Apply every Panoramax migration to ``url`` as Panoramax does; returns how many were applied."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(url.replace("postgresql://", "postgresql+psycopg://", 1))
    migrations = read_migrations(str(folder))
    with contextlib.redirect_stdout(io.StringIO()), backend.lock():  # its migrations print SELECT results
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    backend.connection.close()
    return len(pending)
