"""``ops user`` and ``ops default-account-tokens get``."""

from __future__ import annotations

import logging
import os
from typing import Any

import click

from ops.cli.common import database, emit, open_storage, settings
from ops.cli.options import batch_size_option, dry_run_option, json_option

log = logging.getLogger("ops")


@click.group("default-account-tokens")
def default_account_tokens() -> None:
    """Tokens of the default account."""


@default_account_tokens.command()
@click.pass_context
def get(ctx: click.Context) -> None:
    """Print the default account's token as a JWT (and nothing else on stdout).

    Byte-identical to what Panoramax produces for the same token and secret, so its API accepts it.

        TOKEN=$(ops default-account-tokens get)
    """
    from ops import tokens
    from ops.errors import ConfigError

    secret = settings(ctx).secret_key
    if secret is None and any(os.environ.get(v) == "" for v in ("FLASK_SECRET_KEY", "SECRET_KEY")):
        secret = ""
    for warning in tokens.check_secret(secret):
        click.echo(f"warning: {warning}", err=True)
    if secret is None:
        raise ConfigError(tokens.NO_SECRET)
    with database(ctx) as conn:
        token_id = tokens.default_account_token_id(conn)
    click.echo(tokens.encode(token_id, secret))


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
@batch_size_option(10_000, "Most pictures (batches start at 1,000 and grow while quick)")
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

    ops user alice
    ops user alice --create --set-role admin
    ops user 6c1a9c8e-3f9b-4f57-9f38-3f0e7b2f6a55 --delete-data --dry-run
    """
    from ops import accounts, jobs

    if wait and not delete_data:
        raise click.UsageError("--wait goes with --delete-data")
    identifier = accounts.parse_identifier(account)
    if create and not isinstance(identifier, str):
        raise click.UsageError("a name must be provided to create an account (got an id)")
    store = None
    if wait and not dry_run:
        store = open_storage(ctx)
    output: dict[str, Any] = {}
    lines: list[str] = []
    with database(ctx) as conn:
        with conn.transaction():
            if create and dry_run:
                exists = conn.execute("SELECT 1 FROM accounts WHERE name = %s", (identifier,)).fetchone()
                lines.append(f"would {'not create: already exists' if exists else 'create account'} {identifier!r}")
            elif create:
                created, is_new = accounts.create(conn, identifier)
                output["created"] = is_new
                if is_new and created is not None:
                    lines.append(f"created account {created.label()}")
                else:
                    lines.append(f"account {identifier!r} already exists: nothing changed")
            target = accounts.find(conn, identifier) if not (create and dry_run) else None
            if role and target is not None:
                if dry_run:
                    lines.append(f"would set the role of {target.label()} to {role}")
                else:
                    target = accounts.set_role(conn, target, role)
                    lines.append(f"role of {target.label()} set to {role}")
        if target is not None:
            output["account"] = accounts.describe(conn, target)
        if delete_data and target is not None:
            result = accounts.delete_data(conn, target, batch_size=batch_size, dry_run=dry_run, log=log.info)
            output["delete_data"] = result.as_dict()
            verb = "would " if dry_run else ""
            lines += [
                f"{verb}mark {result.sequences_marked_deleted} sequences deleted",
                f"{verb}delete {result.pictures_deleted} pictures and enqueue {result.jobs_enqueued} file deletion jobs",
                f"{verb}delete {result.upload_sets_deleted} upload sets",
            ]
            if store is not None:
                drained = jobs.drain(conn, store, log=log.info)
                output["files"] = drained.as_dict()
                lines.append("deleted files: " + ", ".join(f"{k} {n}" for k, n in drained.deletion.files.items()))
            elif not dry_run:
                lines.append("the files will be deleted by ops worker")
        if not (create or role or delete_data) and target is not None:
            d = output["account"]
            lines += [
                f"id: {d['id']}",
                f"name: {d['name']}",
                f"role: {d['role']}",
                f"default account: {'yes' if d['is_default'] else 'no'}",
                f"sequences: {d['nb_sequences']}",
                f"pictures: {d['nb_pictures']}",
                f"tokens: {d['nb_tokens']}",
            ]
    emit(output, as_json, lines)
