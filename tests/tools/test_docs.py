"""The documentation cannot drift: the README's tour, the site under docs/ (its generated reference and module
map, its strict build)."""

from __future__ import annotations

import re
import subprocess
import sys

import click
import yaml

from ops.cli import cli, specs
from scripts import cli_reference
from tests.conftest import REPO

DOCS = REPO / "docs"


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


def test_every_command_is_in_the_readme_tour_and_its_reference_is_current():
    readme = (REPO / "README.md").read_text()
    shell_lines = [line for line in readme.splitlines() if line.startswith("$ ")]
    for ctx, command in cli_reference.commands(cli, cli_reference.root_context()):
        if not isinstance(command, click.Group):
            shown = [line for line in shell_lines if re.search(re.escape(ctx.command_path) + r"(\s|\)|$)", line)]
            assert shown, f"the README's tour shows no example of {ctx.command_path}"
    reference = cli_reference.current_section(cli_reference.PAGE.read_text())
    assert reference == cli_reference.render(), "docs/reference.md differs from --help: run make docs"


def test_every_command_has_a_section_with_examples_in_the_guide():
    """A section of docs/commands.md on the command or on its group (`ops jobs` covers `ops jobs list`)."""
    guide = (DOCS / "commands.md").read_text()
    headings = [line for line in guide.splitlines() if line.startswith("## ")]
    for ctx, command in cli_reference.commands(cli, cli_reference.root_context()):
        if isinstance(command, click.Group):
            continue
        words = ctx.command_path.split()
        paths = [" ".join(words[:n]) for n in range(len(words), 1, -1)]
        assert any(re.search(rf"`{re.escape(p)}[` ]", h) for p in paths for h in headings), ctx.command_path


def test_the_quiet_flag_and_env_file_are_documented():
    text = (DOCS / "configuration.md").read_text()
    assert "--env-file" in text and "`-q/--quiet`" in text and "OPS_ENV_FILE" in text


def test_the_reference_names_each_command_s_pieces():
    reference = cli_reference.PAGE.read_text()
    for s in specs():
        assert f"core `{s.core}`" in reference, s.path


def test_the_readme_is_a_short_tour_whose_links_all_lead_somewhere():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if not t.startswith(("http://", "https://"))]
    assert {"docs/panoramax.md", "docs/commands.md", "docs/reference.md", "docs/performance.md"} <= set(local)
    for target in local:
        assert (REPO / target).is_file(), f"the README links to {target}, which does not exist"


def test_the_site_builds_strict_with_every_page_in_its_navigation(tmp_path):
    """MkDocs in strict mode: a warning (a link to a missing page or anchor, a page left out of the
    navigation) fails the build, as `make docs` does in CI."""
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    in_nav = {page for entry in config["nav"] for page in entry.values()}
    assert in_nav == {p.name for p in DOCS.glob("*.md")}
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "panoramax" / "index.html").is_file()


def test_the_development_guide_lists_every_module():
    from scripts import dev_guide

    text = (REPO / "docs" / "development.md").read_text()
    assert dev_guide.current_section(text) == dev_guide.render(), "docs/development.md's module map: make docs"
