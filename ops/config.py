"""Settings of ops: from the environment (Panoramax's variable names), a ``.env`` file and global options.

Secrets never leave this module in clear: ``mask_url`` is how a database or S3 URL is shown.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ops.errors import ConfigError

DB_URL_HELP = (
    "DB_URL is not set: set it (export DB_URL=postgresql://user:password@host:5432/dbname, "
    "or put it in .env, or pass --db-url), or start a local database with `ops local-db start` "
    "and use `ops local-db url`"
)
ACCEPTED_DB_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
SECRET_QUERY_KEYS = {"password", "sslpassword", "secret", "key"}


def load_dotenv_file(path: Path | None = None) -> None:
    """Read ``.env`` of the current directory into the environment; real variables win."""
    env_file = path or Path.cwd() / ".env"
    if env_file.is_file():
        from dotenv import load_dotenv

        load_dotenv(env_file, override=False)


def mask_url(url: str) -> str:
    """Return ``url`` with its password (and password-like query values) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if sep else f"{user}@{hostport}"
    query = parts.query
    if query:
        pairs = [
            (k, "***" if k.lower() in SECRET_QUERY_KEYS else v) for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The secret substrings of a URL (password, in raw and decoded forms), to scrub from messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = []
    if parts.password:
        found += [parts.password, quote(parts.password, safe="")]
        raw = parts.netloc.rpartition("@")[0].partition(":")[2]
        found.append(raw)
    for k, v in parse_qsl(parts.query):
        if k.lower() in SECRET_QUERY_KEYS and v:
            found.append(v)
    return [s for s in found if s]


def scrub(text: str, secrets: list[str]) -> str:
    """Replace every secret in ``text`` by ``***``."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def normalize_db_url(url: str) -> str:
    """Validate a libpq URL and return it with the ``postgresql://`` scheme.

    Accepts ``postgres://``, ``postgresql://`` and ``postgresql+psycopg://`` (yoyo's form).
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise ConfigError(f"malformed DB_URL {mask_url(url)}: {e}") from None
    if parts.scheme not in ACCEPTED_DB_SCHEMES:
        raise ConfigError(f"malformed DB_URL {mask_url(url)}: it must start with postgresql:// or postgres://")
    if not parts.path.strip("/"):
        raise ConfigError(f"malformed DB_URL {mask_url(url)}: no database name after the host")
    return urlunsplit(("postgresql", *tuple(parts)[1:]))


def application_name() -> str:
    """The ``application_name`` ops sessions show in ``pg_stat_activity``."""
    return f"ops@{socket.gethostname()}"[:63]


@dataclass(frozen=True)
class Settings:
    """What the global options and the environment say. Each command asks only for what it needs."""

    db_url: str | None = None
    secret_key: str | None = None
    fs_url: str | None = None
    fs_permanent_url: str | None = None
    fs_derivates_url: str | None = None
    fs_tmp_url: str | None = None
    verbose: int = 0
    quiet: bool = False

    def require_db_url(self) -> str:
        if not self.db_url:
            raise ConfigError(DB_URL_HELP)
        return normalize_db_url(self.db_url)

    def secrets(self) -> list[str]:
        """Every secret these settings hold, for scrubbing any text shown to the user."""
        found: list[str] = []
        for url in (self.db_url, self.fs_url, self.fs_permanent_url, self.fs_derivates_url, self.fs_tmp_url):
            if url:
                found += url_secrets(url)
        if self.secret_key:
            found.append(self.secret_key)
        for var in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            if os.environ.get(var):
                found.append(os.environ[var])
        return found
