"""Every setting of ops, declared once: its name, type, default, environment variables (Panoramax's names)
and help, from which the CLI builds its options (``ops.cli.options.setting_option``).

The global settings are the fields of ``Settings`` (each command asks it only for what it needs); the
settings of one command's option are the ``Setting`` constants below it, and the core modules read their
defaults from here, so an option's default and the core's are one value. Nothing else reads the environment
for a setting. Light on purpose: imported when the CLI starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from ops.config import DB_URL_HELP, normalize_db_url, url_secrets
from ops.errors import ConfigError

MAX_BATCH = 1_000_000
MAX_COUNT = 1_000_000_000  # thresholds and limits counted in jobs or rows


class Kind(StrEnum):
    """How a setting is written on the command line."""

    TEXT = "text"
    URL = "url"
    PATH = "path"  # a folder
    SECONDS = "seconds"  # 30, 2.5 or a duration (30s, 2m), within [low, high]
    DURATION = "duration"  # 90s, 30m, 24h, 7d
    COUNT = "count"  # an integer within [low, high]
    FLAG = "flag"  # --x (with a negative form when the setting names one: --x/--no-x)
    COUNTER = "counter"  # -v, -vv


@dataclass(frozen=True)
class Setting:
    help: str
    env: tuple[str, ...] = ()  # the variables read, first set first
    default: Any = None
    kind: Kind = Kind.TEXT
    low: float | None = None
    high: float | None = None
    metavar: str | None = None
    names: tuple[str, ...] = ()  # the option's names when not --<field-name> ("-v", "--verbose"; "--jit/--no-jit")
    hidden: bool = False

    def from_environment(self) -> str | None:
        """The value of the first of its variables that is set and not empty."""
        return next((os.environ[name] for name in self.env if os.environ.get(name)), None)


SETTING = "setting"  # the key of a field's metadata


def _global(default: Any, help: str, *env: str, **how: Any) -> Any:
    return field(default=default, metadata={SETTING: Setting(help, env, default, **how)})


@dataclass(frozen=True)
class Settings:
    """What the global options and the environment say. Each command asks only for what it needs."""

    db_url: str | None = _global(None, "PostgreSQL URL, postgresql://user:password@host:port/db.", "DB_URL",
                                 kind=Kind.URL, metavar="URL")  # fmt: skip
    secret_key: str | None = _global(None, "Secret that signs tokens.", "FLASK_SECRET_KEY", "SECRET_KEY", metavar="KEY")
    fs_url: str | None = _global(None, "Root of picture storage: a path, file:// or s3://.", "FS_URL",
                                 kind=Kind.URL, metavar="URL")  # fmt: skip
    fs_permanent_url: str | None = _global(None, "Original pictures.", "FS_PERMANENT_URL", kind=Kind.URL, metavar="URL")
    fs_derivates_url: str | None = _global(None, "Derived files.", "FS_DERIVATES_URL", kind=Kind.URL, metavar="URL")
    fs_tmp_url: str | None = _global(None, "Pictures being processed.", "FS_TMP_URL", kind=Kind.URL, metavar="URL")
    connect_timeout: float = _global(10, "Longest wait for the database to accept a connection.",
                                     "OPS_CONNECT_TIMEOUT", kind=Kind.SECONDS, low=2, high=3600)  # fmt: skip
    read_lock_timeout: float = _global(5, "Read-only commands: longest wait for a lock (lock_timeout; 0: no limit).",
                                       "OPS_READ_LOCK_TIMEOUT", kind=Kind.SECONDS, low=0, high=3600)  # fmt: skip
    read_statement_timeout: float = _global(
        60, "Read-only commands: longest statement (statement_timeout; 0: no limit).", "OPS_READ_STATEMENT_TIMEOUT",
        kind=Kind.SECONDS, low=0, high=86400)  # fmt: skip
    read_deadline: float = _global(
        900, "Read-only commands: longest time for their whole database work, whatever the link (its query is "
        "cancelled then; 0: no limit).", "OPS_READ_DEADLINE", kind=Kind.SECONDS, low=0, high=86400)  # fmt: skip
    write_lock_timeout: float = _global(
        60, "Commands that write: longest wait for a lock held by another session, which is then named "
        "(lock_timeout; 0: no limit).", "OPS_WRITE_LOCK_TIMEOUT", kind=Kind.SECONDS, low=0, high=86400)  # fmt: skip
    s3_connect_timeout: float = _global(5, "S3: longest wait to connect.", "OPS_S3_CONNECT_TIMEOUT",
                                        kind=Kind.SECONDS, low=0.1, high=600)  # fmt: skip
    s3_read_timeout: float = _global(20, "S3: longest wait for an answer.", "OPS_S3_READ_TIMEOUT",
                                     kind=Kind.SECONDS, low=0.1, high=3600)  # fmt: skip
    s3_deadline: float = _global(60, "S3: longest time one call may take, its retries included.", "OPS_S3_DEADLINE",
                                 kind=Kind.SECONDS, low=1, high=86400)  # fmt: skip
    s3_max_attempts: int = _global(5, "S3: attempts per call, botocore's standard retry mode.", "AWS_MAX_ATTEMPTS",
                                   kind=Kind.COUNT, low=1, high=20)  # fmt: skip
    jit: bool = _global(False, "Let PostgreSQL JIT-compile ops's statements. Off: compiling Panoramax's per-sequence "
                        "functions costs far more than it saves (docs/performance.md).", "OPS_JIT", kind=Kind.FLAG,
                        names=("--jit/--no-jit",))  # fmt: skip
    verbose: int = _global(0, "More logs on stderr, and tracebacks of unexpected errors.", kind=Kind.COUNTER,
                           names=("-v", "--verbose"))  # fmt: skip
    quiet: bool = _global(False, "Print nothing but warnings and errors (for cron): no result lines, no logs. --json "
                          "output, a token and a health check that is not OK are still printed.", kind=Kind.FLAG,
                          names=("-q", "--quiet"))  # fmt: skip

    def require_db_url(self) -> str:
        if not self.db_url:
            raise ConfigError(DB_URL_HELP)
        return normalize_db_url(self.db_url)

    @property
    def secret_key_set_empty(self) -> bool:
        """FLASK_SECRET_KEY (or SECRET_KEY) is set, to nothing (Click reads an empty variable as unset)."""
        env = global_settings()["secret_key"].env
        return self.secret_key is None and any(os.environ.get(v) == "" for v in env)

    @property
    def default_region_set(self) -> bool:
        """The environment names an AWS region (boto3 reads it itself)."""
        return bool(os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))

    @property
    def storage_configured(self) -> bool:
        """Some storage setting is given (FS_URL or one of FS_*_URL): whether it is whole is for
        ``ops.storage.from_settings`` to say."""
        return any((self.fs_url, self.fs_permanent_url, self.fs_derivates_url, self.fs_tmp_url))

    def secrets(self) -> list[str]:
        """Every secret these settings hold, for scrubbing any text shown to the user."""
        found: list[str] = []
        urls = (self.db_url, self.fs_url, self.fs_permanent_url, self.fs_derivates_url, self.fs_tmp_url,
                SCRATCH_URL.from_environment())  # fmt: skip
        for url in urls:
            if url:
                found += url_secrets(url)
        if self.secret_key:
            found.append(self.secret_key)
        for var in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"):  # read by boto3 itself
            if os.environ.get(var):
                found.append(os.environ[var])
        return found


def global_settings() -> dict[str, Setting]:
    """Field name -> setting, in the order of ``ops --help``."""
    return {f.name: f.metadata[SETTING] for f in fields(Settings)}


# The settings of one command's option (the commands that take it in brackets).
ENV_FILE = Setting(
    "Read settings from this file instead of ./.env (real environment variables win).",
    ("OPS_ENV_FILE",),
    metavar="PATH",
)  # fmt: skip  (every command: read before the others)
MIGRATIONS_DIR = Setting(
    "Use migrations from this folder instead of the packaged ones (tests, development).",
    ("OPS_MIGRATIONS_DIR",),
    kind=Kind.PATH,
    hidden=True,
)  # fmt: skip  (db)
SCRATCH_URL = Setting(
    "An empty database to replay the migrations on, for a role without CREATEDB (ops fills it, then empties it).",
    ("OPS_SCRATCH_URL",),
    kind=Kind.URL,
    metavar="URL",
)  # fmt: skip  (db plan)
CACHE_DIR = Setting(
    "Where fetched Panoramax releases are kept (default: ~/.cache/ops).", ("OPS_CACHE_DIR",), kind=Kind.PATH
)  # fmt: skip  (db plan, db upgrade --panoramax)
MAX_LOCK = Setting(
    "Warn about every lock that blocks writes on a table for longer than this.",
    default=5.0,
    kind=Kind.SECONDS,
    low=0,
    high=86400,
    metavar="SECONDS",
)  # fmt: skip  (db plan)
MIGRATION_LOCK = Setting(
    "How long to wait for another ops process to release the migration lock.",
    default=300,
    kind=Kind.SECONDS,
    low=0,
    high=86400,
    metavar="SECONDS",
)  # fmt: skip  (db upgrade, rollback)
DDL_LOCK = Setting(
    "lock_timeout of migration statements; a statement that waits longer is retried 3 times, then fails.",
    default=10,
    kind=Kind.SECONDS,
    low=0.001,
    high=3600,
    metavar="SECONDS",
)  # fmt: skip  (db upgrade, rollback)
DEADLINE = Setting(
    "With --panoramax: how long one migration is retried while a lock is not granted.",
    default=600,
    kind=Kind.SECONDS,
    low=1,
    high=86400,
)  # fmt: skip  (db upgrade, rollback)
NB_RETRIES = Setting(
    "Attempts before a failing job leaves the queue.", ("PICTURE_PROCESS_NB_RETRIES",), 5, Kind.COUNT, 1, 1000
)  # fmt: skip  (worker)
REFRESH_CRON = Setting(
    "When refreshes are due (Panoramax's setting).", ("PICTURE_PROCESS_REFRESH_CRON",), "0 2 * * *", metavar="CRON"
)  # fmt: skip  (worker, health, doctor)
CLEANUP_BATCH = Setting("Pictures per transaction.", default=1000, kind=Kind.COUNT, low=1, high=MAX_BATCH)
WORKER_BATCH = Setting("Delete jobs per transaction.", default=1000, kind=Kind.COUNT, low=1, high=MAX_BATCH)
SEQUENCE_BATCH = Setting("Sequences per transaction.", default=1000, kind=Kind.COUNT, low=1, high=MAX_BATCH)
DELETE_BATCH = Setting(
    "Most pictures (batches start at 1,000 and grow while quick) per transaction.",
    default=10_000,
    kind=Kind.COUNT,
    low=1,
    high=MAX_BATCH,
)  # fmt: skip  (user --delete-data)
ORPHAN_MIN_AGE = Setting(
    "Leave files younger than this (an upload may write its file before its row).", default="1h", kind=Kind.DURATION
)  # fmt: skip  (storage orphans)
STUCK_AFTER = Setting(
    "How old a processing state must be to count as stuck.", default="24h", kind=Kind.DURATION
)  # fmt: skip  (doctor)
# health's thresholds
QUEUE_WARNING = Setting("Jobs ready in the queue: warning.", default=1_000, kind=Kind.COUNT, low=1, high=MAX_COUNT,
                        metavar="JOBS")  # fmt: skip
QUEUE_CRITICAL = Setting("Jobs ready in the queue: critical.", default=10_000, kind=Kind.COUNT, low=1,
                         high=MAX_COUNT, metavar="JOBS")  # fmt: skip
AGE_WARNING = Setting("Oldest ready job: warning.", default="1h", kind=Kind.DURATION)
AGE_CRITICAL = Setting("Oldest ready job: critical.", default="6h", kind=Kind.DURATION)
FAILURES_WARNING = Setting("Jobs failed in the last 24 h: warning.", default=1, kind=Kind.COUNT, low=1,
                           high=MAX_COUNT, metavar="JOBS")  # fmt: skip
FAILURES_CRITICAL = Setting("Jobs failed in the last 24 h: critical.", default=100, kind=Kind.COUNT, low=1,
                            high=MAX_COUNT, metavar="JOBS")  # fmt: skip
REFRESH_GRACE = Setting("Overdue refresh: warning.", default="1h", kind=Kind.DURATION)
REFRESH_CRITICAL = Setting("Overdue refresh: critical.", default="1d", kind=Kind.DURATION)
HEALTH_TIMEOUT = Setting("The answer comes within this time whatever fails: what has not answered is CRITICAL.",
                         default=10, kind=Kind.SECONDS, low=1, high=3600, metavar="SECONDS")  # fmt: skip


def cache_dir(given: Path | None = None) -> Path:
    """Where ops keeps what it fetches (Panoramax releases): ``given``, else OPS_CACHE_DIR, else
    $XDG_CACHE_HOME/ops."""
    if given is not None:
        return given
    if found := CACHE_DIR.from_environment():
        return Path(found)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ops"
