"""Every exception ops reports to its user, each with a message written for an operator and an exit code.

Core modules raise these; the CLI's one error mapping (``ops/cli/__init__.py``) prints
``error: <message>`` on stderr and exits with ``exit_code``.
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
    """The user asked for something that cannot be: a bad value or a bad combination of options."""

    exit_code = 2


class ConfigError(OpsError):
    """A setting is missing or malformed."""


class DatabaseUnavailable(OpsError):
    """The database cannot be reached or lacks something ops needs."""


class CheckUnavailable(OpsError):
    """A checking command (doctor, db plan) could not check at all: exit 3, "could not check" (Nagios's
    UNKNOWN), never 1, which means "found something", nor 2, a usage error."""

    exit_code = 3


class SchemaPending(OpsError):
    """The schema is not in the state the command needs (migrations pending, modified or missing)."""


class NotOpsManaged(OpsError):
    """The database's schema is Panoramax's: ops does not migrate it."""


class LockTimeout(OpsError):
    """Another ops process holds the lock we wait for."""


class WaitTimeout(OpsError):
    """A statement waited for a lock, or ran, longer than its session allows (lock_timeout,
    statement_timeout): a command that only looks gives up rather than hang."""


class MigrationError(OpsError):
    """A migration (or its rollback) failed; the database is as before that migration."""


class RefreshFailed(OpsError):
    """A materialized view could not be refreshed (the others were)."""


class QueryFileError(OpsError):
    """A file of ``sql/queries/`` breaks the one-statement-per-name rule (a packaging defect)."""


class StorageError(OpsError):
    """The picture storage is misconfigured or unreachable."""


class StorageUnavailable(StorageError):
    """The storage as a whole does not answer (unreachable, too slow, credentials refused, bucket or area
    folder gone): no job counts it against itself; the worker waits for the storage to come back."""


class FilesNotDeleted(OpsError):
    """A run did all it could but some files stayed: refused (permissions, S3), not regular files, or the
    storage stopping mid-run. Never exit 0: the counts are printed, the failure is the exit code."""


class StorageCheckFailed(OpsError):
    """Pictures ready to be served have lost their original, or an original changed."""


class UnknownSequences(OpsError):
    """Some ids given on the command line are no sequence."""


class AccountNotFound(OpsError):
    """No account has this id or name."""


class AmbiguousAccount(OpsError):
    """Several accounts have this name: an id is needed."""


class TokenError(OpsError):
    """The default account or its token is missing."""


class TokenInvalid(OpsError):
    """A token is not one the API accepts (forged, altered, revoked, unclaimed)."""


class LocalDbError(OpsError):
    """The local PostgreSQL cluster cannot be set up or driven."""


class PlanError(OpsError):
    """``ops db plan`` could not plan (a source it cannot read, a scratch database it cannot create)."""

    exit_code = 2
