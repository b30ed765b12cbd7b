"""``ops user`` and ``ops default-account-tokens get``."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import click

from ops.cli.common import database, emit, open_storage, settings
from ops.cli.options import batch_size_option, dry_run_option, json_option
from ops.cli.registry import specified
from ops.schema.needs import DELETE_JOBS, Needs
from ops.settings import DELETE_BATCH

if TYPE_CHECKING:
    from ops.accounts import UserResult

log = logging.getLogger("ops")


def _secret(ctx: click.Context) -> str:
    """The signing secret of the settings, refused when missing or empty; warnings on stderr."""
    from ops import tokens

    current = settings(ctx)
    given = "" if current.secret_key_set_empty else current.secret_key  # set but empty: say so, not "not set"
    secret, warnings = tokens.validated_secret(given)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    return secret


@click.group("tokens")
def tokens_group() -> None:
    """Panoramax-compatible tokens.

    \b
    ops tokens verify "$TOKEN"
    """


@specified("ops.tokens:verify", Needs({"accounts": ("id", "name"), "tokens": ("id", "account_id")}), writes=False,
           sql=("tokens",), not_benched="one token looked up by its id")  # fmt: skip
@tokens_group.command()
@click.argument("token")
@json_option
@click.pass_context
def verify(ctx: click.Context, token: str, as_json: bool) -> None:
    """Check a token as Panoramax's API would: HS256 signature with the secret, its row, its account.

    Prints the account and exits 0, or exits 1 saying why the token is not valid (forged with another key,
    altered, alg none, revoked, not claimed).

    \b
    ops tokens verify "$(ops default-account-tokens get)"
    ops tokens verify "$TOKEN" --json
    """
    from ops import tokens

    secret = _secret(ctx)
    with database(ctx) as conn:
        info = tokens.verify(conn, token, secret)
    emit(
        info.as_dict(),
        as_json,
        [f"valid: token {info.token_id} of account {accounts_printable(info.account_name)} ({info.account_id})"],
    )


def accounts_printable(name: str) -> str:
    from ops.accounts import printable

    return printable(name)


@click.group("default-account-tokens")
def default_account_tokens() -> None:
    """Tokens of the default account.

    \b
    ops default-account-tokens get
    """


@specified("ops.tokens:default_account_token_id",
           Needs({"accounts": ("id", "is_default"), "tokens": ("id", "account_id", "generated_at")}), writes=False,
           sql=("tokens",), not_benched="one token looked up")  # fmt: skip
@default_account_tokens.command()
@json_option
@click.pass_context
def get(ctx: click.Context, as_json: bool) -> None:
    """Print the default account's token as a JWT (and nothing else on stdout).

    Byte-identical to what Panoramax produces for the same token and secret, so its API accepts it.

    \b
    TOKEN=$(ops default-account-tokens get)
    ops default-account-tokens get --json   # {"token": "eyJ…", "token_id": "…"}
    """
    from ops import tokens

    secret = _secret(ctx)
    with database(ctx) as conn:
        token_id = tokens.default_account_token_id(conn)
    jwt = tokens.encode(token_id, secret)
    if as_json:
        click.echo(json.dumps({"token": jwt, "token_id": str(token_id)}, indent=2))
    else:
        click.echo(jwt)


@specified("ops.accounts:manage", DELETE_JOBS | Needs(
    {"accounts": ("id", "name", "role", "is_default", "created_at"), "sequences": ("account_id", "status", "updated_at"),
     "pictures": ("account_id",), "upload_sets": ("id", "account_id"), "tokens": ("account_id",)},
    {"account_role": ("admin", "user"), "sequence_status": ("deleted",)},
), writes=True, sql=("accounts", "account_counts", "delete_data_batch", "capabilities", "storage_check", "jobs_claim", "jobs_finish",
                     "panoramax_refresh"))  # fmt: skip
@click.command()
@click.argument("account")
@click.option("--create", is_flag=True, help="Create an account with this name (nothing changes if it exists).")
@click.option("--set-role", "role", type=click.Choice(["admin", "user"]), help="Give the account this role.")
@click.option(
    "--delete-data",
    is_flag=True,
    help="Delete the account's pictures (files by the worker), mark its sequences deleted, remove its upload sets.",
)
@click.option(
    "--wait", is_flag=True, help="With --delete-data: delete the files now instead of leaving them to ops worker."
)
@batch_size_option(DELETE_BATCH)
@dry_run_option
@json_option
@click.pass_context
def user(
    ctx: click.Context,
    account: str,
    create: bool,
    role: str | None,
    delete_data: bool,
    wait: bool,
    batch_size: int,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Show, create or change an account, given by id (UUID) or name; steps run as create, role, delete-data.

    \b
    ops user alice
    ops user alice --create --set-role admin
    ops user 6c1a9c8e-3f9b-4f57-9f38-3f0e7b2f6a55 --delete-data --dry-run
    """
    from ops import accounts

    if wait and not delete_data:
        raise click.UsageError("--wait goes with --delete-data")
    identifier = accounts.parse_identifier(account)
    if create and not isinstance(identifier, str):
        raise click.UsageError("a name must be provided to create an account (got an id)")
    store = open_storage(ctx) if wait and not dry_run else None
    with database(ctx, read_only=dry_run or not (create or role or delete_data)) as conn:
        result = accounts.manage(
            conn, identifier, create_it=create, role=role, delete_it=delete_data, storage=store,
            batch_size=batch_size, dry_run=dry_run, log=log.info,
        )  # fmt: skip
    emit(result.as_dict(), as_json, _user_lines(result, show=not (create or role or delete_data)))
    files = result.files
    if files is not None and (files.storage_unavailable or files.given_up or files.retried_later):
        from ops.errors import FilesNotDeleted

        raise FilesNotDeleted(f"{files.given_up + files.retried_later} delete jobs failed and the storage "
                              f"{'stopped answering' if files.storage_unavailable else 'answered'}: the jobs left "
                              "wait for ops worker (see ops jobs list)")  # fmt: skip


def _user_lines(result: UserResult, show: bool) -> list[str]:
    """What ``ops user`` did (or would do), in the order it runs the steps."""
    from ops.accounts import printable

    would = result.dry_run
    label = (f"{printable(result.account.account.name)} ({result.account.account.id})" if result.account
             else repr(result.name))  # fmt: skip
    if show and result.account is not None:
        a, held = result.account.account, result.account.holdings
        return [f"id: {a.id}", f"name: {printable(a.name)}", f"role: {a.role}",
                f"default account: {'yes' if a.is_default else 'no'}",
                f"created: {a.created_at:%Y-%m-%d %H:%M:%S}" if a.created_at else "created: unknown",
                f"sequences: {held.sequences}", f"pictures: {held.pictures}", f"upload sets: {held.upload_sets}",
                f"tokens: {held.tokens}"]  # fmt: skip
    lines = []
    if result.created is False:
        lines.append(f"account {result.name!r} already exists: nothing changed")
    elif result.created:
        lines.append(f"would create account {result.name!r}" if would else f"created account {label}")
    if result.role_set:
        lines.append(f"would set the role of {label} to {result.role_set}" if would
                     else f"role of {label} set to {result.role_set}")  # fmt: skip
    deleted = result.delete_data
    if deleted is not None:
        if would:
            lines += [f"would mark {deleted.sequences_marked_deleted} sequences deleted",
                      f"would delete {deleted.pictures_deleted} pictures and queue as many file deletion jobs",
                      f"would delete {deleted.upload_sets_deleted} upload sets"]  # fmt: skip
        else:
            lines += [f"marked {deleted.sequences_marked_deleted} sequences deleted",
                      f"deleted {deleted.pictures_deleted} pictures and queued {deleted.jobs_enqueued} file "
                      "deletion jobs", f"deleted {deleted.upload_sets_deleted} upload sets"]  # fmt: skip
            if result.files is not None:
                done = ", ".join(f"{k} {n}" for k, n in result.files.deletion.files.items())
                lines.append(f"deleted files: {done}")
                if result.files.storage_unavailable:
                    log.warning(f"warning: storage unavailable: {result.files.storage_unavailable}; the delete "
                                "jobs left wait in the queue for ops worker")  # fmt: skip
            else:
                lines.append("the files will be deleted by ops worker")
    return lines


COMMANDS = (tokens_group, default_account_tokens, user)
