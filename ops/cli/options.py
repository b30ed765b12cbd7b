"""Options shared by several commands, defined once (pip-tools' style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

dry_run_option = click.option("--dry-run", is_flag=True, help="Show what would be done and change nothing.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
lock_timeout_option = click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=300,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for another ops process to release the migration lock.",
)
ddl_lock_timeout_option = click.option(
    "--ddl-lock-timeout",
    type=click.FloatRange(min=0.001),
    default=10,
    show_default=True,
    metavar="SECONDS",
    help="lock_timeout of migration statements; a statement that waits longer is retried 3 times, then fails.",
)


def batch_size_option(default: int, what: str) -> Callable[[F], F]:
    """``--batch-size``: how much work one transaction (or batch) takes."""
    return click.option(
        "--batch-size", type=click.IntRange(min=1), default=default, show_default=True, help=f"{what} per transaction."
    )
