"""How core modules tell their caller what they do, without printing: a callback taking one line."""

from collections.abc import Callable

Log = Callable[[str], None]  # one line said (a log line, a progress report)


def silent(_: object) -> None:
    """The default reporter and progress callback: says nothing, counts nothing."""
