"""``ops local-db``: a local PostgreSQL + PostGIS cluster for trials (never for production)."""

from __future__ import annotations

from pathlib import Path

import click

from ops.cli.common import emit
from ops.cli.options import json_option
from ops.cli.registry import specified
from ops.localdb import DEFAULT_DATA_DIR, LocalCluster

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Where the cluster keeps its data.",
)


@click.group("local-db")
def local_db() -> None:
    """A local PostgreSQL + PostGIS cluster (127.0.0.1, trust auth) for trying ops and for the tests.

    \b
    ops local-db start
    ops local-db stop
    """


def _state(cluster: LocalCluster) -> dict[str, str | None]:
    """What ``--json`` prints for every local-db command: the cluster's state, URL and data folder."""
    running = cluster.running_port() is not None
    state = "running" if running else "stopped" if cluster.initialized() else "not created"
    return {"state": state, "url": cluster.url() if running else None, "data_dir": str(cluster.data_dir)}


@specified(
    "ops.localdb:LocalCluster.start",
    None,
    writes=True,
    sql=("ddl",),
    not_benched="starts a local cluster for trials, never production",
)
@local_db.command()
@data_dir_option
@json_option
def start(data_dir: Path, as_json: bool) -> None:
    """Create (first time) and start the cluster; print its URL.

    \b
    ops local-db start && export DB_URL=$(ops local-db url)
    ops local-db start --json   # {"state": "running", "url": …, "data_dir": …}
    """
    cluster = LocalCluster(data_dir)
    url = cluster.start()
    emit(_state(cluster), as_json, [url], always=True)


@specified("ops.localdb:LocalCluster.stop", None, writes=True, not_benched="stops that cluster")
@local_db.command()
@data_dir_option
@json_option
def stop(data_dir: Path, as_json: bool) -> None:
    """Stop the cluster (its data stays).

    \b
    ops local-db stop
    ops local-db stop --json    # {"state": "stopped", "was_running": true, …}
    """
    cluster = LocalCluster(data_dir)
    was_running = cluster.stop()
    emit({**_state(cluster), "was_running": was_running}, as_json, ["stopped" if was_running else "not running"],
         always=True)  # fmt: skip


@specified("ops.localdb:LocalCluster.running_port", None, writes=False, not_benched="reads that cluster's port file")
@local_db.command()
@data_dir_option
@json_option
def status(data_dir: Path, as_json: bool) -> None:
    """Say whether the cluster runs, and its URL. Exit 1 when it is stopped.

    \b
    ops local-db status
    ops local-db status --json   # {"state": "running", "url": …, "data_dir": …}
    """
    cluster = LocalCluster(data_dir)
    data = _state(cluster)
    running = data["state"] == "running"
    line = f"running: {data['url']} ({cluster.data_dir})" if running else f"{data['state']} ({cluster.data_dir})"
    emit(data, as_json, [line], always=True)
    if not running:
        raise click.exceptions.Exit(1)


@specified("ops.localdb:LocalCluster.url", None, writes=False, not_benched="prints that cluster's URL")
@local_db.command()
@data_dir_option
@click.option("--start", "start_it", is_flag=True, help="Start the cluster first if it is not running.")
@json_option
def url(data_dir: Path, start_it: bool, as_json: bool) -> None:
    """Print the connection URL of the cluster.

    \b
    export DB_URL=$(ops local-db url --start)
    ops local-db url --json     # {"state": …, "url": …, "data_dir": …}
    """
    cluster = LocalCluster(data_dir)
    url = cluster.start() if start_it else cluster.url()
    emit({**_state(cluster), "url": url}, as_json, [url], always=True)


COMMANDS = (local_db,)
