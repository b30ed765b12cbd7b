"""A local PostgreSQL + PostGIS cluster, for trying ops, for the tests and for the benchmarks.

It uses the machine's own server binaries. Run as root, it starts the server as the ``postgres`` OS user
(``initdb`` refuses root), so the data folder must be reachable by that user. The server listens on
127.0.0.1 only, on a free port, with trust authentication: a cluster for trials, never for production.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ops.errors import LocalDbError

DEFAULT_DATA_DIR = Path(".ops") / "postgres"
DATABASE = "ops"
SUPERUSER = "postgres"
INSTALL_HINT = "apt-get install -y --no-install-recommends --no-upgrade postgresql-15 postgresql-15-postgis-3"
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _runs_as_root() -> bool:
    return os.geteuid() == 0


def find_bindir() -> Path:
    """PostgreSQL server binaries: ``pg_config --bindir`` if it has them, else the newest Debian install."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout
            candidates.append(Path(out.strip()))
        except (OSError, subprocess.CalledProcessError):
            pass
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += debian
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise LocalDbError(f"PostgreSQL server binaries (initdb, pg_ctl) not found; install them: {INSTALL_HINT}")


def _sharedir(bindir: Path) -> Path:
    pg_config = bindir / "pg_config"
    if pg_config.is_file():
        out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    return Path("/usr/share/postgresql") / bindir.parent.name


def require_postgis(bindir: Path) -> None:
    control = _sharedir(bindir) / "extension" / "postgis.control"
    if not control.is_file():
        version = bindir.parent.name
        raise LocalDbError(
            f"PostGIS is not installed for PostgreSQL {version} ({control} is missing); install it: "
            f"apt-get install -y --no-install-recommends --no-upgrade postgresql-{version}-postgis-3"
        )


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when it is free on 127.0.0.1, else any free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise LocalDbError("no free TCP port on 127.0.0.1")


@dataclass
class LocalCluster:
    """A cluster whose data lives in ``data_dir``."""

    data_dir: Path
    fast: bool = False  # fsync off: for throwaway clusters (tests, benchmarks)
    extra_settings: dict[str, str] = field(default_factory=dict)  # more server settings, written at init

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "data"

    @property
    def logfile(self) -> Path:
        return self.data_dir / "postgres.log"

    # -- running binaries, as postgres when we are root --

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
        if _runs_as_root():
            pw = pwd.getpwnam(SUPERUSER)
            kwargs = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            env["HOME"] = pw.pw_dir
        proc: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
            args, capture_output=True, text=True, env=env, cwd="/", **kwargs
        )
        if check and proc.returncode != 0:
            detail = " ".join((proc.stderr or proc.stdout).split())[:500]
            raise LocalDbError(f"{Path(args[0]).name} failed: {detail} (log: {self.logfile})")
        return proc

    def _prepare_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not _runs_as_root():
            return
        try:
            pw = pwd.getpwnam(SUPERUSER)
        except KeyError:
            raise LocalDbError(
                f"running as root needs a '{SUPERUSER}' OS user to run the server; {INSTALL_HINT}"
            ) from None
        os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
        probe = self._run(["/usr/bin/test", "-w", str(self.data_dir)], check=False)
        if probe.returncode != 0:
            raise LocalDbError(
                f"the '{SUPERUSER}' OS user cannot reach {self.data_dir} (a parent folder is private); "
                "choose another place with --data-dir, for example /var/tmp/ops-db"
            )

    # -- lifecycle --

    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").is_file()

    def running_port(self) -> int | None:
        """The port of the running server, read from ``postmaster.pid``, or None when it is stopped."""
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.is_file():
            return None
        lines = pidfile.read_text().splitlines()
        try:
            pid, port = int(lines[0]), int(lines[3])
        except (IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return port

    def url(self, database: str = DATABASE) -> str:
        port = self.running_port()
        if port is None:
            raise LocalDbError(
                f"the local database in {self.data_dir} is not running; start it with `ops local-db start`"
            )
        return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"

    def init(self) -> None:
        bindir = find_bindir()
        require_postgis(bindir)
        self._prepare_dir()
        self._run([
            str(bindir / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8",
        ])  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "''",
            "timezone": "'UTC'",
            "max_connections": "100",
        }
        if self.fast:
            settings.update(FAST_SETTINGS)
        settings.update(self.extra_settings)
        with open(self.pgdata / "postgresql.auto.conf", "a") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())

    def start(self) -> str:
        """Initialize if needed, start if stopped, create the ``ops`` database; return its URL."""
        if self.running_port() is not None:
            return self.url()
        bindir = find_bindir()
        require_postgis(bindir)
        if not self.initialized():
            self.init()
        else:
            self._prepare_dir()
        # The port of the last start when it is still free: the URL stays the same across restarts.
        last = self.data_dir / "port"
        port = free_port(int(last.read_text()) if last.is_file() and last.read_text().strip().isdigit() else None)
        last.write_text(str(port))
        self._run([
            str(bindir / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.logfile), "-w", "-t", "60",
            "-o", f"-p {port}", "start",
        ])  # fmt: skip
        self._create_database(DATABASE)
        return self.url()

    def _create_database(self, name: str) -> None:
        import psycopg

        admin = self.url("postgres")
        for _ in range(50):
            try:
                with psycopg.connect(admin, autocommit=True) as conn:
                    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                    if not exists:
                        from ops import queries

                        conn.execute(queries.identified("ddl", "create_database", database=name))
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise LocalDbError(f"the local server started but does not accept connections (log: {self.logfile})")

    def stop(self) -> bool:
        """Stop the server; False when it was not running."""
        if self.running_port() is None:
            return False
        bindir = find_bindir()
        self._run([str(bindir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])
        return True

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
