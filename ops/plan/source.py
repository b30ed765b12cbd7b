"""Which migrations an upgrade would apply: ops's own, or Panoramax's from a release.

A Panoramax release is named by a geovisio wheel or sdist file, an unpacked migrations folder, or a version
(``2.15.1``) that pip fetches into ops's cache: from the wheel when it carries the migrations (2.13 and
later), else from the sdist. The pending ones are found the way yoyo finds them: the migrations whose hash
(SHA-256 of the id) is not in ``_yoyo_migration``, in yoyo's dependency order. Nothing is imported from a
Python migration: its dependencies are read from its source text.
"""

from __future__ import annotations

import ast
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from yoyo.migrations import read_sql_migration
from yoyo.topologicalsort import topological_sort

from ops.errors import PlanError

VERSION = re.compile(r"^\d+\.\d+(\.\d+)?([a-z]+\d*)?$")
MIGRATION_FILE = re.compile(r"^(?P<id>[^.]+)\.(?P<ext>sql|py)$")


@dataclass(eq=False)
class Migration:
    """One migration file, as yoyo reads it."""

    id: str
    path: Path
    python: bool
    transactional: bool = True
    statements: list[str] = field(default_factory=list)
    depends_on: set[str] = field(default_factory=set)

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.id.encode("utf-8")).hexdigest()


def _python_depends(path: Path) -> set[str]:
    """``__depends__`` of a Python migration, read from its text (never imported)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__depends__" for t in node.targets):
            value = ast.literal_eval(node.value)
            return {value} if isinstance(value, str) else set(value)
    return set()


def read_folder(folder: Path) -> list[Migration]:
    """Every migration of ``folder`` (rollback files aside), in yoyo's order: by id, then dependencies."""
    found: dict[str, Migration] = {}
    for path in sorted(folder.iterdir()):
        match = MIGRATION_FILE.match(path.name)
        if not match or not path.is_file():
            continue
        mid, ext = match["id"], match["ext"]
        if ext == "py":
            found[mid] = Migration(mid, path, True, depends_on=_python_depends(path))
            continue
        try:
            directives, _, statements = read_sql_migration(str(path))
        except UnicodeDecodeError as exc:
            raise PlanError(f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): "
                            "yoyo could not read it either") from None  # fmt: skip
        depends = set((directives.get("depends") or "").split())
        transactional = (directives.get("transactional") or "true").strip().lower() not in ("false", "no", "0")
        found[mid] = Migration(mid, path, False, transactional, list(statements), depends)
    if not found:
        raise PlanError(f"{folder} holds no migration (.sql or .py files)")
    return _sorted(list(found.values()))


def _sorted(migrations: list[Migration]) -> list[Migration]:
    """yoyo's order: by id, then each after what it depends on (among ``migrations``)."""
    by_id = {m.id: m for m in sorted(migrations, key=lambda m: m.id)}
    graph = {mid: [d for d in m.depends_on if d in by_id] for mid, m in by_id.items()}
    try:
        return [by_id[mid] for mid in topological_sort(list(by_id), graph)]
    except ValueError as exc:
        raise PlanError(f"the migrations' dependencies cannot be ordered: {exc}") from None


def pending(migrations: list[Migration], applied_hashes: set[str]) -> list[Migration]:
    """The migrations not applied yet, in yoyo's order (``backend.to_apply``)."""
    return _sorted([m for m in migrations if m.hash not in applied_hashes])


def _extract(members: list[tuple[str, bytes]], into: Path) -> Path:
    """Write the ``migrations/`` files of an archive (with their data files) into ``into``."""
    into.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=into.name + ".partial-", dir=into.parent))  # one per process
    for name, data in members:
        target = tmp.joinpath(*PurePosixPath(name).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    try:
        tmp.rename(into)
    except OSError:  # another process unpacked the same archive meanwhile: its folder is the same
        shutil.rmtree(tmp, ignore_errors=True)
        if not into.is_dir():
            raise
    return into


def _relative(name: str) -> str | None:
    """The path inside the migrations folder of an archive member, or None when it is elsewhere."""
    parts = PurePosixPath(name).parts
    if "migrations" not in parts or name.endswith("/"):
        return None
    rest = parts[parts.index("migrations") + 1 :]
    if not rest or any(p in ("..", "") for p in rest):
        return None
    return "/".join(rest)


def from_archive(path: Path, cache: Path) -> Path:
    """The migrations folder of a geovisio wheel or sdist, unpacked once into the cache."""
    into = cache / "migrations" / path.name
    if into.is_dir():
        return into
    members: list[tuple[str, bytes]] = []
    try:
        if path.suffix == ".whl" or zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    rel = _relative(name)
                    if rel and name.startswith("geovisio/migrations/"):
                        members.append((rel, archive.read(name)))
        else:
            with tarfile.open(path) as archive:
                for member in archive.getmembers():
                    rel = _relative(member.name)
                    extracted = archive.extractfile(member) if member.isfile() else None
                    if rel and extracted and PurePosixPath(member.name).parts[1:2] == ("migrations",):
                        members.append((rel, extracted.read()))
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise PlanError(f"{path} is neither a geovisio wheel (.whl) nor an sdist (.tar.gz) that can be read "
                        f"({type(exc).__name__})") from None  # fmt: skip
    if not any(name.endswith(".sql") for name, _ in members):
        raise PlanError(f"{path.name} carries no Panoramax migrations (geovisio wheels do from 2.13, sdists always)")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        return _extract(members, into)
    except OSError as exc:
        raise _cache_error(cache, exc) from None


def _cache_error(cache: Path, exc: OSError) -> PlanError:
    return PlanError(f"cannot write the cache directory {cache}: {exc.strerror or exc} (--cache-dir, OPS_CACHE_DIR)")


def pip_download(version: str, into: Path, binary: bool) -> Path | None:
    """geovisio ``version``'s wheel (or sdist) in ``into``, fetched with pip unless it is there already; None
    when pip cannot fetch it. pip writes into a folder of this process's own, and the file is moved into place
    whole, so that concurrent runs sharing a cache never read a half-written archive."""
    pattern = f"geovisio-{version}-*.whl" if binary else f"geovisio-{version}.tar.gz"
    found = sorted(into.glob(pattern))
    if found:
        return found[0]
    kind = ["--only-binary", ":all:"] if binary else ["--no-binary", ":all:"]
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=into) as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", *kind, f"geovisio=={version}", "-d", tmp],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        fetched = sorted(Path(tmp).glob(pattern))
        if proc.returncode != 0 or not fetched:
            return None
        return fetched[0].replace(into / fetched[0].name)


def _pip_download(version: str, cache: Path, binary: bool) -> Path | None:
    downloads = cache / "downloads"
    try:
        downloads.mkdir(parents=True, exist_ok=True)
        return pip_download(version, downloads, binary)
    except OSError as exc:
        raise _cache_error(cache, exc) from None


def from_version(version: str, cache: Path) -> Path:
    """The migrations of geovisio ``version``, fetched with pip (the wheel, else the sdist) once."""
    for binary in (True, False):
        archive = _pip_download(version, cache, binary)
        if archive is None:
            continue
        try:
            return from_archive(archive, cache)
        except PlanError:
            if not binary:
                raise
    raise PlanError(f"could not fetch geovisio=={version} with pip (is the package registry reachable?)")


def resolve(source: str, cache: Path) -> Path:
    """The folder of migration files named by ``source`` (a folder, a wheel, an sdist or a version)."""
    path = Path(source)
    if path.is_dir():
        for candidate in (path, path / "migrations", path / "geovisio" / "migrations"):
            if candidate.is_dir() and any(candidate.glob("*.sql")):
                return candidate
        raise PlanError(f"{source} holds no migration files (.sql)")
    if path.is_file():
        return from_archive(path, cache)
    if VERSION.match(source):
        return from_version(source, cache)
    raise PlanError(f"--panoramax {source!r} is neither a folder, a wheel or sdist file, nor a version such as 2.15.1")
