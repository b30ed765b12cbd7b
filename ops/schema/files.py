"""The schema files shipped with ops: migrations (``sql/migrations``) and views (``sql/views``), and the
checksum that tells when one was edited."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ops.errors import MigrationError


def default_migrations_dir() -> Path:
    """The ``sql/migrations`` folder shipped inside the installed package."""
    return Path(str(resources.files("ops.sql") / "migrations"))


def views_dir_for(migrations_dir: Path) -> Path:
    """Views live next to the migrations: ``sql/views`` beside ``sql/migrations``."""
    return migrations_dir.parent / "views"


def normalized_checksum(text: str) -> str:
    """SHA-256 of a file's content with LF line ends and trailing whitespace stripped."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return hashlib.sha256("\n".join(lines).rstrip("\n").encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class MigrationFile:
    """One migration on disk: ``<id>.sql`` and its ``<id>.rollback.sql``."""

    id: str
    path: Path

    @property
    def rollback_path(self) -> Path:
        return self.path.with_name(f"{self.id}.rollback.sql")

    def checksum(self) -> str:
        return normalized_checksum(utf8_text(self.path))


def utf8_text(path: Path) -> str:
    """A migration or view file's text; MigrationError naming the file when it is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationError(
            f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): save it as UTF-8"
        ) from None


def migration_files(directory: Path) -> list[MigrationFile]:
    """The migrations of ``directory`` in file-name order (their NNNN prefix)."""
    if not directory.is_dir():
        raise MigrationError(f"migrations folder {directory} does not exist")
    files = [
        MigrationFile(p.name[: -len(".sql")], p)
        for p in directory.iterdir()
        if p.is_file() and p.name.endswith(".sql") and not p.name.endswith(".rollback.sql")
    ]
    return sorted(files, key=lambda f: f.id)


@dataclass(frozen=True)
class ViewFile:
    """One materialized view on disk: ``<name>.sql`` creates the view ``<name>`` and its indexes."""

    name: str
    path: Path

    def sql(self) -> str:
        return utf8_text(self.path)

    def checksum(self) -> str:
        return normalized_checksum(self.sql())


def view_files(directory: Path | None) -> list[ViewFile]:
    """The views of ``directory`` by name (none when there is no such folder)."""
    if directory is None or not directory.is_dir():
        return []
    return sorted((ViewFile(p.stem, p) for p in directory.glob("*.sql")), key=lambda v: v.name)
