"""Options shared by several commands, defined once (pip-tools' style)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
MAX_BATCH = 1_000_000
MAX_COUNT = 1_000_000_000  # thresholds and limits counted in jobs or rows


class DurationType(click.ParamType):
    """A duration: 90s, 30m, 24h, 7d, 2w, 1d12h, at most 100 years (exit 2 otherwise)."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        from ops.durations import parse_duration
        from ops.errors import UsageError

        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except UsageError as e:
            self.fail(str(e), param, ctx)


DURATION = DurationType()


class Seconds(click.FloatRange):
    """A number of seconds within a range: ``30``, ``2.5``, or a duration (``30s``, ``2m``); never ``nan``
    or ``inf``, which would compare as within any range (exit 2 naming the value)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import math

        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                from ops.durations import parse_duration
                from ops.errors import UsageError

                try:
                    number = parse_duration(value.strip()).total_seconds()
                except UsageError:
                    self.fail(f"{value[:40]!r} is not a number of seconds: write 30, 2.5 or 30s, 2m", param, ctx)
            value = number
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(f"{value!r} is not a number of seconds: write 30, 2.5 or 30s, 2m", param, ctx)
        return super().convert(value, param, ctx)


dry_run_option = click.option("--dry-run", is_flag=True, help="Show what would be done and change nothing.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
lock_timeout_option = click.option(
    "--lock-timeout",
    type=Seconds(0, 86400),
    default=300,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for another ops process to release the migration lock.",
)
ddl_lock_timeout_option = click.option(
    "--ddl-lock-timeout",
    type=Seconds(0.001, 3600),
    default=10,
    show_default=True,
    metavar="SECONDS",
    help="lock_timeout of migration statements; a statement that waits longer is retried 3 times, then fails.",
)


deadline_option = click.option("--deadline", type=Seconds(1, 86400), default=600, show_default=True,
                               help="With --panoramax: how long one migration is retried while a lock is not "
                               "granted.")  # fmt: skip


def batch_size_option(default: int, what: str) -> Callable[[F], F]:
    """``--batch-size``: how much work one transaction (or batch) takes."""
    return click.option(
        "--batch-size",
        type=click.IntRange(1, MAX_BATCH),
        default=default,
        show_default=True,
        help=f"{what} per transaction.",
    )


refresh_cron_option = click.option(
    "--refresh-cron",
    default="0 2 * * *",
    show_default=True,
    envvar="PICTURE_PROCESS_REFRESH_CRON",
    metavar="CRON",
    help="When refreshes are due (Panoramax's setting) [env: PICTURE_PROCESS_REFRESH_CRON].",
)
