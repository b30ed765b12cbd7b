"""Settings, URL handling and error output: one clear line, secrets never shown."""

from __future__ import annotations

import pytest

from ops.config import mask_url, normalize_db_url
from ops.errors import ConfigError


def test_mask_url_hides_password_and_password_query():
    assert mask_url("postgresql://u:s3cr%40t@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert (
        mask_url("postgresql://h/db?password=abc&sslmode=require") == "postgresql://h/db?password=***&sslmode=require"
    )
    assert mask_url("postgresql://u@h/db") == "postgresql://u@h/db"


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_accepted_schemes(scheme):
    assert normalize_db_url(f"{scheme}://u:p@h:5/db") == "postgresql://u:p@h:5/db"


@pytest.mark.parametrize("bad", ["mysql://h/db", "h/db", "postgresql://h:notaport/db", "postgresql://h"])
def test_malformed_urls_are_refused_without_the_password(bad):
    with pytest.raises(ConfigError) as err:
        normalize_db_url(bad)
    assert "malformed DB_URL" in str(err.value)


def test_db_url_unset_says_how_to_set_it(ops):
    result = ops("db", "status")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: DB_URL is not set")
    assert "ops local-db start" in lines[0]


def test_malformed_url_is_one_line(ops):
    result = ops("db", "status", env={"DB_URL": "mysql://root:hunter2@h/db"})
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == "error: malformed DB_URL mysql://root:***@h/db: it must start with postgresql:// or postgres://"
    )


def test_unreachable_database_masks_the_password(ops):
    from ops.localdb import free_port

    port = free_port()
    url = f"postgresql://alice:Very-Secret-42@127.0.0.1:{port}/geovisio"
    for args in (["db", "status"], ["-v", "db", "upgrade"], ["db", "rollback"]):
        result = ops(*args, env={"DB_URL": url})
        assert result.exit_code == 1
        assert "Very-Secret-42" not in result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith(f"error: cannot connect to postgresql://alice:***@127.0.0.1:{port}/geovisio: ")
        assert "Traceback" not in result.stderr


def test_password_never_printed_even_verbose(ops, ops_db_url):
    # the test cluster trusts local connections, so any password is accepted and must stay hidden
    url = ops_db_url.replace("postgres@", "postgres:Hidden-Pw-99@")
    for args in (["-v", "db", "status"], ["-v", "db", "upgrade"], ["-v", "db", "upgrade", "--dry-run"]):
        result = ops(*args, env={"DB_URL": url})
        assert result.exit_code == 0, result.stderr
        assert "Hidden-Pw-99" not in result.stdout + result.stderr


def test_dotenv_file_is_read(ops_db_url, tmp_path):
    from tests.conftest import run_ops

    (tmp_path / ".env").write_text(f"DB_URL={ops_db_url}\n")
    proc = run_ops("db", "status", "--check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout


def test_db_commands_need_no_storage_nor_secret(ops, ops_db_url):
    result = ops("db", "status", env={"DB_URL": ops_db_url})
    assert result.exit_code == 0
    assert "FS_URL" not in result.stderr and "SECRET" not in result.stderr


def test_every_setting_is_declared_once_in_the_settings_table():
    """Each option that reads the environment gets its variables, default and help from ops.settings: no
    `envvar=` anywhere else in the CLI, and each global option's default is the Settings field's."""
    import ast
    from dataclasses import fields

    import click

    from ops import settings
    from ops.cli import cli
    from tests.conftest import REPO, every_command

    table = [s for s in vars(settings).values() if isinstance(s, settings.Setting)]
    table += list(settings.global_settings().values())
    envs = {s.env for s in table if s.env}
    for _, command in every_command(cli):
        for param in command.params:
            if isinstance(param, click.Option) and param.envvar:
                assert tuple(param.envvar) in envs, f"{param.name}: {param.envvar} is not in ops.settings"
    for path in (REPO / "ops" / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "envvar":
                assert path.name == "options.py", f"{path.name}:{node.value.lineno}: envvar= outside the table"
    options = {p.name: p for p in cli.params if isinstance(p, click.Option)}
    for f in fields(settings.Settings):
        if f.default is not None and f.name != "verbose":  # (-v counts from nothing)
            assert options[f.name].default == f.default, f.name


def test_the_core_and_the_cli_share_each_default():
    """What a core function does by default is what its command does by default."""
    import inspect

    from ops import accounts, sequences, settings, worker
    from ops.cli import cli

    def option_default(path: str, name: str) -> object:
        command = cli
        for word in path.split():
            command = command.get_command(None, word)  # type: ignore[union-attr,arg-type,assignment]
        return next(p.default for p in command.params if p.name == name)

    def default(function: object, name: str) -> object:
        return inspect.signature(function).parameters[name].default  # type: ignore[arg-type]

    assert option_default("worker", "batch_size") == worker.WorkerOptions().batch_size == settings.WORKER_BATCH.default
    assert option_default("worker", "nb_retries") == worker.WorkerOptions().nb_retries == settings.NB_RETRIES.default
    assert option_default("worker", "refresh_cron") == worker.WorkerOptions().refresh_cron
    assert option_default("sequences reorder", "batch_size") == default(sequences.reorder, "batch_size")
    assert option_default("user", "batch_size") == default(accounts.manage, "batch_size")
