"""compose.yaml, parsed (no Docker engine here), and its migrations step run as compose runs it."""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO


def test_compose_has_a_one_shot_migration_the_others_wait_for():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    migrations = services["migrations"]
    command = migrations["command"]
    assert command == ["sh", "-c", "ops db status --check > /dev/null || ops db upgrade"]
    assert migrations["depends_on"]["db"]["condition"] == "service_healthy"
    waiting = [
        name
        for name, s in services.items()
        if s.get("depends_on", {}).get("migrations", {}).get("condition") == "service_completed_successfully"
    ]
    assert waiting, "no service waits for the migrations"
    assert any("postgis" in s.get("image", "") for s in services.values())
    db_url = migrations["environment"]["DB_URL"]
    assert db_url.startswith("postgresql://")
    for s in services.values():  # Panoramax's compose misspells these as BD_*
        assert not any(str(k).startswith("BD_") for k in s.get("environment", {}) or {})


def test_compose_runs_a_worker_after_the_migrations():
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    worker = services["worker"]
    assert worker["command"] == ["ops", "worker"]
    assert worker["depends_on"]["migrations"]["condition"] == "service_completed_successfully"
    assert worker["environment"]["FS_URL"].startswith("s3://")


def test_the_compose_migrations_command_lets_the_worker_start_on_both_kinds(db_url, empty_db_url):
    """The migrations service's command, run as compose runs it: exit 0 on a Panoramax-managed database (whose
    schema ops leaves alone) as on ops's own and on an empty one (migrated), so the worker starts everywhere."""
    import os
    import subprocess
    import sys

    command = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["migrations"]["command"]
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    for url in (db_url, empty_db_url):
        proc = subprocess.run(command, env={"PATH": path, "DB_URL": url}, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    status = subprocess.run(["ops", "db", "status", "--check"], env={"PATH": path, "DB_URL": empty_db_url})
    assert status.returncode == 0


# --- compose.panoramax.yaml: ops added to Panoramax's own compose files ---------------------------------------

PANORAMAX_COMPOSE = ("docker-compose.yml", "docker/docker-compose-full.yml")
REQUIRED = re.compile(r"^\$\{(?P<name>\w+):\?(?P<message>.+)\}$")  # ${VAR:?message}: required


def panoramax_compose(name: str) -> dict:
    """One of Panoramax's compose files, from the geovisio sdist on the package registry."""
    from scripts import panoramax

    path = panoramax.sdist()
    with tarfile.open(path) as archive:
        member = archive.extractfile(f"{path.name.removesuffix('.tar.gz')}/{name}")
        assert member is not None
        return yaml.safe_load(member.read())


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


@pytest.mark.parametrize("name", PANORAMAX_COMPOSE)
def test_the_overlay_merges_with_panoramax_compose_and_reuses_its_database_secret_and_pictures(name):
    theirs = panoramax_compose(name)
    ours = yaml.safe_load((REPO / "compose.panoramax.yaml").read_text())
    # ops's services are added; of Panoramax's services, only the two shared variables are given
    for shared in set(ours["services"]) & set(theirs["services"]):
        assert set(ours["services"][shared]) == {"environment"}, shared
        assert set(_environment(ours["services"][shared])) <= {"DB_URL", "FLASK_SECRET_KEY"}, shared
    their_env = {k: v for s in theirs["services"].values() for k, v in _environment(s).items()}
    their_volumes = set(theirs.get("volumes") or {})
    networks = set(theirs.get("networks") or {}) | set(ours.get("networks") or {})  # default too: podman-compose
    mounts = {v.split(":")[0]: v.split(":")[1] for s in theirs["services"].values() for v in s.get("volumes", [])
              if isinstance(v, str)}  # fmt: skip
    for service_name in ("ops", "ops-monitor"):
        service = ours["services"][service_name]
        env = _environment(service)
        assert "DB_URL" in their_env and "FS_URL" in their_env  # variables Panoramax's services have
        for var in ("DB_URL", "FLASK_SECRET_KEY"):  # one value for both, required, never a copied default
            assert REQUIRED.match(env[var]) and REQUIRED.match(env[var])["name"] == var, (service_name, var)
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            assert source in their_volumes | set(ours.get("volumes") or {}), (service_name, source)
            if source in their_volumes:
                assert mounts[source] == target == env["FS_URL"], (service_name, volume)  # the picture volume
        assert set(service.get("networks") or {}) <= networks, service_name
        for dependency in service.get("depends_on", {}):
            assert dependency in theirs["services"], (service_name, dependency)  # Panoramax's migrations
    assert ours["services"]["ops"]["profiles"] == ["ops"]  # one-off: docker compose run --rm ops …
    assert ours["services"]["ops"]["entrypoint"] == ["ops"]
    monitor = " ".join(ours["services"]["ops-monitor"]["command"])
    assert "health --prometheus" in monitor and "mv /textfile/ops.prom.tmp /textfile/ops.prom" in monitor
    assert "doctor --prometheus" in monitor and "mv /textfile/ops_doctor.prom.tmp /textfile/ops_doctor.prom" in monitor


def compose_tools() -> list:
    """The compose implementations on this machine, each as the command that starts it: docker-compose
    (Debian's package) and podman-compose (the test set-up's, with Debian's podman), both installed by
    ``make test``."""
    import shutil
    import sys

    tools = []
    for command, needs in (("docker-compose", "docker-compose"), ("podman-compose", "podman")):
        found = shutil.which(command) or shutil.which(command, path=str(Path(sys.executable).parent))
        mark = pytest.mark.skipif(
            not (found and shutil.which(needs)), reason=f"{needs} missing (make test installs it)"
        )
        tools.append(pytest.param(found or command, id=command, marks=mark))
    return tools


def compose_config(
    tool: str, sources: Path, name: str, env_file: Path, overlay: bool = True
) -> subprocess.CompletedProcess:
    """``<tool> config`` of Panoramax's compose file with the overlay (its one-off ``ops`` profile on), with
    the variables of ``env_file`` only (none from this process's environment)."""
    files = ["-f", str(sources / name)] + (["-f", str(REPO / "compose.panoramax.yaml")] if overlay else [])
    clean = {k: v for k, v in os.environ.items() if k not in ("DB_URL", "FLASK_SECRET_KEY")}
    command = [tool, *files, "--env-file", str(env_file), "--profile", "ops", "config"]
    merged = subprocess.run(command, cwd=sources, env=clean, capture_output=True, text=True, timeout=120, check=False)
    if overlay and merged.returncode != 0:
        alone = compose_config(tool, sources, name, env_file, overlay=False)
        if alone.returncode != 0:  # docker-compose 1.29 and the full file: booleans in its environment
            pytest.skip(f"{tool} rejects Panoramax's {name} on its own: {alone.stderr.strip().splitlines()[-1]}")
    return merged


@pytest.fixture(scope="module")
def panoramax_sources(tmp_path_factory) -> Path:
    """Panoramax's sources, unpacked: its compose files name their build folders."""
    from scripts import panoramax

    path = panoramax.sdist()
    folder = tmp_path_factory.mktemp("panoramax")
    with tarfile.open(path) as archive:
        archive.extractall(folder, filter="data")
    return folder / path.name.removesuffix(".tar.gz")


@pytest.mark.parametrize("tool", compose_tools())
@pytest.mark.parametrize("name", PANORAMAX_COMPOSE)
def test_compose_merges_the_overlay_and_gives_panoramax_and_ops_one_secret_and_database(
    tool, name, panoramax_sources, tmp_path
):
    env_file = tmp_path / "panoramax.env"
    env_file.write_text("DB_URL=postgres://gvs:our-password@db/geovisio\nFLASK_SECRET_KEY=the-instance-secret\n")
    merged = compose_config(tool, panoramax_sources, name, env_file)
    assert merged.returncode == 0, merged.stderr
    services = yaml.safe_load(merged.stdout)["services"]
    for service in ("api", "ops", "ops-monitor"):
        assert _environment(services[service])["FLASK_SECRET_KEY"] == "the-instance-secret", service
    for service in ("api", "migrations", "background-worker", "ops", "ops-monitor"):
        assert _environment(services[service])["DB_URL"] == "postgres://gvs:our-password@db/geovisio", service
    assert "pic_data" in {v["source"] if isinstance(v, dict) else v.split(":")[0]
                          for v in services["ops"]["volumes"]}  # fmt: skip


@pytest.mark.parametrize("tool", compose_tools())
@pytest.mark.parametrize("name", PANORAMAX_COMPOSE)
def test_compose_stops_with_one_line_when_the_secret_is_missing(tool, name, panoramax_sources, tmp_path):
    env_file = tmp_path / "panoramax.env"
    env_file.write_text("DB_URL=postgres://gvs:gvspwd@db/geovisio\n")
    merged = compose_config(tool, panoramax_sources, name, env_file)
    assert merged.returncode != 0
    said = [line for line in merged.stderr.splitlines() if "FLASK_SECRET_KEY" in line]
    assert len(said) >= 1 and "set FLASK_SECRET_KEY to Panoramax's secret" in said[0], merged.stderr


def test_the_image_runs_as_a_user_with_a_health_check_and_labels():
    text = (REPO / "Dockerfile").read_text()
    final = text[text.rindex("\nFROM ") :]  # the stage that is shipped
    assert "USER ops" in final and "HEALTHCHECK" in final and "ops -q health" in final
    assert "org.opencontainers.image.title" in final and "org.opencontainers.image.version" in final
    assert "build" not in final.split("COPY --from=build", 1)[1].split("USER", 1)[0].replace("/dist", "")
    # ops db plan copies the schema with pg_dump; apt's lists are not left in the layer
    assert "apt-get install -y --no-install-recommends postgresql-client" in final
    assert "rm -rf /var/lib/apt/lists/*" in final


def test_the_monitor_loop_writes_the_health_and_doctor_files(db_url, tmp_path):
    """ops-monitor's shell loop as compose runs it (`$$` is compose's `$`), its first minute: both textfiles
    written whole, in the format node_exporter reads."""
    import os
    import subprocess
    import sys

    from prometheus_client.parser import text_string_to_metric_families

    from tests.storage_helpers import env, local_store

    ours = yaml.safe_load((REPO / "compose.panoramax.yaml").read_text())
    loop = ours["services"]["ops-monitor"]["command"][0].replace("$$", "$")
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    first_minute = loop.replace("/textfile/", f"{textfile}/").replace("sleep 60;", "break;")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    run_env = {**os.environ, **env(db_url, local_store(tmp_path / "store")), "PATH": path}
    done = subprocess.run(["sh", "-c", first_minute], env=run_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in textfile.iterdir()) == ["ops.prom", "ops_doctor.prom"]
    health = {f.name for f in text_string_to_metric_families((textfile / "ops.prom").read_text())}
    doctor = {f.name for f in text_string_to_metric_families((textfile / "ops_doctor.prom").read_text())}
    assert "ops_health_status" in health and "ops_doctor_findings" in doctor
