"""The reliability suite's bookkeeping: every scenario records how many runs it tried and how many failed,
with the command that reproduces it; ``make reliability-report`` turns the record of a run into
docs/reliability.md (scripts/reliability_report.py). Nothing in that table is written by hand."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import pytest

from tests.conftest import FULL, REPO, run_ops, start_ops  # noqa: F401 - the one helper, for the scenarios

RECORD = REPO / ".ops" / "reliability" / "results.json"


@dataclass
class Scenario:
    name: str
    category: str  # concurrency | crash | fault | hostile input | secrets
    runs: int = 0
    failures: int = 0
    detail: str = ""
    reproduce: str = ""
    notes: list[str] = field(default_factory=list)

    def run(self, ok: bool, note: str = "") -> None:
        self.runs += 1
        if not ok:
            self.failures += 1
            if note and len(self.notes) < 5:
                self.notes.append(note)


_scenarios: list[Scenario] = []


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Iterator[Scenario]:
    """A scenario of the report: the test counts its runs on it; the reproducing command is the test's."""
    node = request.node.nodeid
    s = Scenario(name=request.node.name, category=request.node.get_closest_marker("category").args[0],
                 reproduce=f"{'OPS_TEST_FULL=1 ' if FULL else ''}.venv/bin/pytest '{node}'")  # fmt: skip
    doc = (request.node.function.__doc__ or "").strip().splitlines()
    s.detail = doc[0] if doc else ""
    yield s
    _scenarios.append(s)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "category(name): the report's category of a reliability scenario")


def _commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()


def write_record(scenarios: list[dict]) -> None:
    """The record of this run's scenarios, read by scripts/reliability_report.py."""
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    data = {"finished_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "commit": _commit(),
            "full": FULL, "scenarios": scenarios}  # fmt: skip
    RECORD.write_text(json.dumps(data, indent=2))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _scenarios:
        return
    found = [asdict(s) for s in _scenarios]
    if hasattr(session.config, "workeroutput"):  # a pytest-xdist worker: tests/conftest.py merges and writes
        session.config.workeroutput["scenarios"] = found
        return
    write_record(found)
