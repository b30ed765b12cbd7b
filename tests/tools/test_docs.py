"""The documentation cannot drift: README's command reference and examples, docs/development.md."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ops import commands
from ops.cli import cli
from scripts import cli_reference
from tests.conftest import REPO


def example_blocks(doc: str) -> list[list[str]]:
    """The ``\\b`` paragraphs of a docstring: examples that Click must print as written."""
    blocks, current = [], None
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped == "\b":
            current = []
            blocks.append(current)
        elif not stripped:
            current = None
        elif current is not None:
            current.append(stripped)
    return blocks


def test_every_command_shows_its_examples_line_by_line():
    commands = cli_reference.commands(cli, cli_reference.root_context())
    assert len(commands) >= 18
    for ctx, command in commands:
        path = ctx.command_path
        blocks = example_blocks(command.help or "")
        assert blocks, f"{path} has no example paragraph (\\b) in its help"
        examples = [line for block in blocks for line in block]
        assert any(path in line for line in examples), f"no example of {path} runs {path}"
        rendered = [line.strip() for line in command.get_help(ctx).splitlines()]
        for line in examples:
            assert line in rendered, f"{path} --help does not show {line!r} on a line of its own"


def test_every_command_is_in_the_readme_and_its_reference_is_current():
    readme = (REPO / "README.md").read_text()
    reference = cli_reference.current_section(readme)
    shell_lines = [line for line in readme.replace(reference, "").splitlines() if line.startswith("$ ")]
    for ctx, command in cli_reference.commands(cli, cli_reference.root_context()):
        if not isinstance(command, click.Group):
            shown = [line for line in shell_lines if re.search(re.escape(ctx.command_path) + r"(\s|\)|$)", line)]
            assert shown, f"the README shows no example of {ctx.command_path}"
    assert reference == cli_reference.render(), "the README's command reference differs from --help: run make readme"


def test_the_quiet_flag_and_env_file_are_documented():
    text = Path(REPO / "README.md").read_text()
    assert "--env-file" in text and "`-q/--quiet`" in text and "OPS_ENV_FILE" in text


def test_the_readme_reference_names_each_command_s_pieces():
    readme = (REPO / "README.md").read_text()
    for s in commands.SPECS:
        assert f"core `{s.core}`" in readme, s.path


def test_the_development_guide_lists_every_module():
    from scripts import dev_guide

    text = (REPO / "docs" / "development.md").read_text()
    assert dev_guide.current_section(text) == dev_guide.render(), "docs/development.md's module map: make docs"
