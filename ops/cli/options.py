"""Options shared by several commands, defined once (pip-tools' style), and the option of any setting of
``ops.settings``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from ops.settings import DDL_LOCK, DEADLINE, MIGRATION_LOCK, REFRESH_CRON, Kind, Setting

F = TypeVar("F", bound=Callable[..., Any])


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


def _type(setting: Setting) -> click.ParamType | None:
    if setting.kind == Kind.SECONDS:
        return Seconds(setting.low, setting.high)
    if setting.kind == Kind.COUNT:
        return click.IntRange(None if setting.low is None else int(setting.low),
                              None if setting.high is None else int(setting.high))  # fmt: skip
    if setting.kind == Kind.DURATION:
        return DURATION
    if setting.kind == Kind.PATH:
        return click.Path(file_okay=False, path_type=Path)
    return None


def setting_option(setting: Setting, *names: str, **extra: Any) -> Callable[[F], F]:
    """The option of a setting of ``ops.settings``: its type, default, environment variables and help as the
    table declares them (``names``: the option's names, when not the setting's own)."""
    env = f" [env: {' or '.join(setting.env)}]" if setting.env else ""
    how: dict[str, Any] = {"help": setting.help.removesuffix(".") + env + ".", "metavar": setting.metavar,
                           "hidden": setting.hidden, "type": _type(setting)}  # fmt: skip
    if setting.env:
        how["envvar"] = list(setting.env)
    if setting.kind in (Kind.FLAG, Kind.COUNTER):
        how["count" if setting.kind == Kind.COUNTER else "is_flag"] = True
    declared = names or setting.names
    if setting.default is not None and setting.kind != Kind.COUNTER:
        how["default"] = setting.default
        how["show_default"] = setting.kind != Kind.FLAG or any("/" in n for n in declared)
    return click.option(*declared, **{**how, **extra})


dry_run_option = click.option("--dry-run", is_flag=True, help="Show what would be done and change nothing.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
lock_timeout_option = setting_option(MIGRATION_LOCK, "--lock-timeout")
ddl_lock_timeout_option = setting_option(DDL_LOCK, "--ddl-lock-timeout")
deadline_option = setting_option(DEADLINE, "--deadline")
refresh_cron_option = setting_option(REFRESH_CRON, "--refresh-cron")


def batch_size_option(setting: Setting) -> Callable[[F], F]:
    """``--batch-size``: how much work one transaction (or batch) takes."""
    return setting_option(setting, "--batch-size")
