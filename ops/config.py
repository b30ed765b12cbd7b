"""Where settings come from and how URLs are shown: the ``.env`` file, database URLs checked, and secrets
masked (``mask_url`` is how a database or S3 URL is shown; the settings themselves are ``ops.settings``).
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

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
    try:
        env_file = path or Path.cwd() / ".env"
        if not env_file.is_file():
            return
    except OSError:  # a working directory this user may not read (ops run as another user): no .env there
        if path is not None:
            raise ConfigError(f"cannot read {path}") from None
        return
    from dotenv.main import DotEnv  # what load_dotenv(override=False) reads, before it sets anything

    try:
        read = DotEnv(env_file, encoding="utf-8", interpolate=True, override=False).dict()
        values = {k: v for k, v in read.items() if v is not None}
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{env_file} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}): "
            "save it as UTF-8, or remove it"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read {env_file}: {e.strerror}") from None
    for key, value in values.items():  # all checked before any is set: a bad file changes nothing
        if not key or "=" in key or "\x00" in key + value:
            raise ConfigError(f"{env_file} sets {key!r}, which no environment can hold (an empty name, '=' in the "
                              "name, or a NUL byte): correct or remove that line")  # fmt: skip
    for key, value in values.items():
        os.environ.setdefault(key, value)  # real variables win


@dataclass(frozen=True)
class RawUserinfo:
    """A URL's ``scheme://user:password@rest`` split on the raw string, before any URL parser sees it: a
    password holding an unencoded ``#``, ``/``, ``?`` or ``@`` stays whole (the last ``@`` ends it). A
    malformed scheme (``s3:/user:secret@bucket``, one slash) is split the same way."""

    head: str  # "scheme://" (as written: "s3:/", "file:")
    user: str
    password: str | None
    rest: str  # host, port, path, query

    @classmethod
    def split(cls, url: str) -> RawUserinfo | None:
        match = _SCHEME.match(url)
        if match is None or "@" not in url[match.end() :]:
            return None
        after = url[match.end() :]
        userinfo, _, rest = after.rpartition("@")
        user, colon, password = userinfo.partition(":")
        return cls(match.group(0), user, password if colon else None, rest)

    @property
    def user_is_secret(self) -> bool:
        """Whether the user part is a credential (a storage URL's: an S3 access key id), not a role name."""
        return self.head.lower().startswith(("s3", "file"))


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/*")
# A libpq keyword DSN's password (``host=db password=secret``, or quoted ``password='a b'``).
_DSN_PASSWORD = re.compile(r"\b(password|sslpassword)(\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def _dsn_secrets(text: str) -> list[str]:
    found = []
    for match in _DSN_PASSWORD.finditer(text):
        value = match.group(3)
        found += [value, value[1:-1].replace("\\'", "'")] if value.startswith("'") else [value]
    return found


def _mask_query(query: str) -> str:
    pairs = [(k, "***" if k.lower() in SECRET_QUERY_KEYS else v) for k, v in parse_qsl(query, keep_blank_values=True)]
    return urlencode(pairs, safe="*")


def mask_url(url: str) -> str:
    """Return ``url`` with its password (and password-like query values) replaced by ``***``, whatever the
        password holds: the mask is applied to the raw string first. In a storage URL the user (an S3 access key
    id) is masked too; a
        libpq keyword DSN (``host=… password=…``) has its password masked."""
    if not _SCHEME.match(url) and "=" in url:
        return _DSN_PASSWORD.sub(lambda m: f"{m.group(1)}{m.group(2)}***", url)
    raw = RawUserinfo.split(url)
    if raw is not None:
        user = "***" if raw.user_is_secret and raw.user else raw.user
        url = f"{raw.head}{user}{':***' if raw.password is not None else ''}@{raw.rest}"
        if not raw.head.endswith("://"):
            return url  # a malformed scheme: never parsed further (a parser could move the mask)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    query = _mask_query(parts.query) if parts.query else ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The secret substrings of a URL (its password raw, decoded and encoded; password-like query values),
    to scrub from any message."""
    found = _dsn_secrets(url) if not _SCHEME.match(url) else []
    raw = RawUserinfo.split(url)
    if raw is not None and raw.password:
        found += [raw.password, unquote(raw.password), quote(unquote(raw.password), safe="")]
    if raw is not None and raw.user_is_secret and raw.user:
        found += [raw.user, unquote(raw.user)]
    try:
        query = urlsplit(url).query
    except ValueError:
        query = ""
    found += [v for k, v in parse_qsl(query) if k.lower() in SECRET_QUERY_KEYS]
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
    raw = RawUserinfo.split(url)
    if raw is not None and raw.password is not None and any(c in raw.password for c in "#/?@[]"):
        raise ConfigError(
            f"malformed DB_URL {mask_url(url)}: the password holds a character that must be percent-encoded "
            "in a URL (# / ? @ [ ] as %23 %2F %3F %40 %5B %5D)"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise ConfigError(f"malformed DB_URL {mask_url(url)}: {scrub(str(e), url_secrets(url))}") from None
    if parts.scheme not in ACCEPTED_DB_SCHEMES:
        raise ConfigError(f"malformed DB_URL {mask_url(url)}: it must start with postgresql:// or postgres://")
    if not parts.path.strip("/"):
        raise ConfigError(f"malformed DB_URL {mask_url(url)}: no database name after the host")
    return urlunsplit(("postgresql", *tuple(parts)[1:]))


def application_name() -> str:
    """The ``application_name`` ops sessions show in ``pg_stat_activity``."""
    return f"ops@{socket.gethostname()}"[:63]
