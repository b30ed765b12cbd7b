"""``ops worker``: the background worker, which deletes the files of queued delete jobs and refreshes the
views on schedule (its work is ``ops.worker``)."""

from __future__ import annotations

import logging
import signal
from typing import Any

import click

from ops.cli.common import counts_line, emit, settings
from ops.cli.options import batch_size_option, json_option, refresh_cron_option, setting_option
from ops.cli.registry import spec_of, specified
from ops.errors import FilesNotDeleted, StorageError, StorageUnavailable
from ops.schema.needs import DELETE_JOBS
from ops.settings import NB_RETRIES, WORKER_BATCH

log = logging.getLogger("ops")


@specified("ops.worker:run_worker", DELETE_JOBS, writes=True,
           sql=("jobs_claim", "jobs_finish", "storage_check", "panoramax_refresh", "bookkeeping"))  # fmt: skip
@click.command()
@click.option("--once", is_flag=True, help="Drain the queue, then exit (cron, tests).")
@batch_size_option(WORKER_BATCH)
@setting_option(NB_RETRIES, "--nb-retries")
@refresh_cron_option
@json_option
@click.pass_context
def worker(ctx: click.Context, once: bool, batch_size: int, nb_retries: int, refresh_cron: str, as_json: bool) -> None:
    """The background worker: deletes the files of queued delete jobs and refreshes the views on schedule.

    Run one or more (any machine); SIGTERM or SIGINT ends the current batch (one waiting on S3 is left for
    the next run, its jobs untouched) and exits 0.

    \b
    ops worker
    ops worker --once --json
    """
    from ops import db
    from ops import storage as storage_module
    from ops import worker as core
    from ops.schema import status

    core.validate_cron(refresh_cron)
    current = settings(ctx)
    store = storage_module.from_settings(current)
    url = current.require_db_url()
    stopping: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        if not stopping:
            log.info("stopping: the current batch ends now (a batch waiting on the storage is left for the next run)")
        stopping.append(signum)
        store.abandon()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def connect() -> Any:
        conn = db.connect(url, autocommit=True, connect_timeout_s=current.connect_timeout, jit=current.jit,
                          server_settings=db.write_settings(current.write_lock_timeout))  # fmt: skip
        status.ensure_schema_current(conn, needs=spec_of(worker).needs, what="ops worker")
        return conn

    try:
        try:
            store.check()
        except StorageError as e:  # a long-running worker waits for the storage (unmounted too), --once says so
            if once:
                raise
            log.warning(f"storage unavailable at start: {e}; file deletions wait for it")
        options = core.WorkerOptions(batch_size, nb_retries, refresh_cron, once)
        if not once:
            log.info("ops worker started")
        total = core.run_worker(connect, store, options, should_stop=lambda: bool(stopping), log=log.info)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    emit(
        total.as_dict(),
        as_json,
        [f"{total.jobs} delete jobs: {total.done} done, {total.retried_later} to retry, {total.given_up} given up",
         counts_line("files deleted", total.deletion.files)]
        + ([counts_line("files already gone", total.deletion.already_gone)] if any(total.deletion.already_gone.values())
           else []),
    )  # fmt: skip
    if total.storage_unavailable and not stopping:  # stopped: the batch left for the next run lost nothing
        raise StorageUnavailable(f"{total.storage_unavailable}; the jobs left keep their attempts")
    if once and (total.given_up or total.retried_later):
        raise FilesNotDeleted(f"{total.given_up + total.retried_later} delete jobs failed ({total.given_up} given up, "
                              f"{total.retried_later} to retry): see ops jobs list --failed")  # fmt: skip


COMMANDS = (worker,)
