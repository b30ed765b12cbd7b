"""Exceptions raised by the core modules, each carrying a message written for an operator.

The CLI prints ``error: <message>`` on stderr and exits with ``exit_code``.
"""


class OpsError(Exception):
    """Base class of every error ops reports to its user."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(OpsError):
    """The user asked for something that cannot be: bad value, missing setting."""

    exit_code = 2


class ConfigError(OpsError):
    """A setting is missing or malformed."""


class DatabaseUnavailable(OpsError):
    """The database cannot be reached or lacks something ops needs."""


class SchemaPending(OpsError):
    """Migrations are pending: the command needs an up-to-date schema."""


class LockTimeout(OpsError):
    """Another ops process holds the lock we wait for."""


class MigrationError(OpsError):
    """A migration (or its rollback) failed; the database is as before that migration."""


class LocalDbError(OpsError):
    """The local PostgreSQL cluster cannot be set up or driven."""
