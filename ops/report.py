"""How core modules tell their caller what they do, without printing: a callback taking one line."""

from collections.abc import Callable

Report = Callable[[str], None]


def silent(_: str) -> None:
    """The default reporter: says nothing."""
