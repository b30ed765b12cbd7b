"""The distribution a newcomer installs: `panoramax-ops`, built as a wheel and an sdist, installed by its name
in a fresh virtualenv outside the repository, and run from there (`ops --version`, `ops db upgrade`,
`ops db status` on a new database)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile

from ops import __version__
from tests.conftest import REPO

DIST = "panoramax_ops"  # the file name form of panoramax-ops


def test_wheel_and_sdist_install_by_name_in_a_fresh_virtualenv_and_run(tmp_path, empty_db_url):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--sdist", "--outdir", str(dist), str(REPO)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    wheel = dist / f"{DIST}-{__version__}-py3-none-any.whl"
    [sdist] = dist.glob(f"panoramax[-_]ops-{__version__}.tar.gz")  # setuptools before 69 keeps the hyphen
    assert wheel.is_file(), sorted(p.name for p in dist.iterdir())

    names = zipfile.ZipFile(wheel).namelist()
    for path in sorted((REPO / "sql").rglob("*.sql")):
        assert f"ops/sql/{path.relative_to(REPO / 'sql').as_posix()}" in names, path
    modules = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "ops").rglob("*.py"))
    assert [m for m in modules if m not in names] == []  # every module of every package is shipped
    metadata = zipfile.ZipFile(wheel).read(f"{DIST}-{__version__}.dist-info/METADATA").decode()
    assert "Name: panoramax-ops" in metadata and "Classifier: Topic :: Database" in metadata
    assert "ops/monitoring/ops-alerts.rules.yml" in names and "ops/monitoring/grafana-dashboard.json" in names
    assert "ops/monitoring/grafana-provisioning.yml" in names
    top = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
        archive.extractall(tmp_path / "unpacked", filter="data")
    assert f"{top}/sql/migrations/0001_extensions.sql" in members and f"{top}/ops/plan/planner.py" in members
    shipped = {"LICENSE", "CHANGELOG.md", "Makefile", "Dockerfile", "compose.panoramax.yaml", "mkdocs.yml",
               "tests/conftest.py", "tests/factories.py", "tests/storage_helpers.py", "tests/unit/test_durations.py",
               "tests/reliability/test_crashes.py", "tests/tools/test_docs.py", "docs/commands.md",
               "monitoring/ops-alerts.rules.yml", "scripts/panoramax.py", "bench/sql/reorder_baseline.sql"}  # fmt: skip
    assert sorted(f for f in shipped if f"{top}/{f}" not in members) == []
    assert not [m for m in members if "/.ops/" in m or "__pycache__" in m or m.endswith(".pyc")]
    # the sdist runs its own tests, its own code imported (a unit test, and one on a real database)
    unpacked = tmp_path / "unpacked" / top
    imported = subprocess.run([sys.executable, "-c", "import ops, tests; print(ops.__file__, tests.__file__)"],
                              cwd=unpacked, env={**os.environ, "PYTHONPATH": str(unpacked)}, capture_output=True,
                              text=True)  # fmt: skip
    assert imported.stdout.split() == [str(unpacked / "ops" / "__init__.py"), str(unpacked / "tests" / "__init__.py")]
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit/test_durations.py",
         "tests/test_sequences.py::test_reorder_twice_writes_nothing_the_second_time"],
        cwd=unpacked, env={**os.environ, "PYTHONPATH": str(unpacked)}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0 and " passed" in ran.stdout and "error" not in ran.stdout.lower(), ran.stdout[-3000:]

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_URL", "OPS_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(DB_URL=empty_db_url, PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ops", *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)

    version = run("--version")
    assert version.returncode == 0 and __version__ in version.stdout
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import ops; print(ops.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True)  # fmt: skip
    assert where.stdout.startswith(str(venv))  # the installed copy runs, not the checkout
    upgrade = run("db", "upgrade")
    assert upgrade.returncode == 0 and "database is up to date" in upgrade.stdout, upgrade.stderr
    status = run("db", "status", "--check")
    assert status.returncode == 0 and "up to date" in status.stdout, status.stderr


def test_the_version_is_written_once():
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert __version__ not in dockerfile and __version__ not in makefile
    outside_make = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}  # under make test: no make[1]
    dry = subprocess.run(["make", "--no-print-directory", "-n", "image"], capture_output=True, text=True, cwd=REPO,
                         check=True, env=outside_make)  # fmt: skip
    echoed = subprocess.run(["sh", "-c", dry.stdout.replace("docker build", "echo", 1)], capture_output=True,
                            text=True, cwd=REPO, check=True)  # fmt: skip
    assert f"--build-arg VERSION={__version__} " in echoed.stdout
