"""ops.health's report: what a closed report says when checks did not answer, and how it renders."""

from __future__ import annotations

from ops.cli.health import nagios
from ops.cli.prometheus import textfile
from ops.health import CHECKS, FAMILIES, STORAGE_CHECKS, Check, HealthReport


def test_a_report_closed_on_time_out_names_the_running_check_and_prints_every_series():
    report = HealthReport(storage_configured=True)
    report.add(Check("database", "ok", "answers (3 ms)", 3.0, "ms"), ops_database_up=1)
    report.doing("database", "reading the job queue")
    report.close(10, ["database"])
    assert report.checks["schema"].state == "critical" and "reading the job queue" in report.checks["schema"].message
    assert report.checks["queue"].state == "unknown" and report.state == "critical" and report.exit_code == 2
    text = textfile(FAMILIES, report.series())
    assert 'ops_check_up{check="schema"} 0.0' in text and 'ops_check_up{check="database"} 1.0' in text
    assert all(f'check="{name}"' in text for name in CHECKS)
    assert 'ops_jobs_queued{task="transfer"} NaN' in text  # not read: no reassuring 0


def test_the_nagios_first_line_has_the_state_the_worst_checks_and_perfdata():
    report = HealthReport()
    report.add(Check("database", "ok", "answers (3 ms)", 3.2, "ms"))
    report.add(Check("queue", "warning", "1200 jobs ready", 1200, "", 1000, 10000))
    for name in ("schema", "refresh", *STORAGE_CHECKS):
        report.add(Check(name, "ok", "fine"))
    report.add(Check("oldest_job", "ok", "no job ready"))
    report.add(Check("failures", "ok", "none"))
    report.close(10, [])
    first = nagios(report)[0]
    assert first.startswith(
        "OPS HEALTH WARNING - queue: 1200 jobs ready | database_time=3.2ms;;;0; queued=1200;1000;10000;0;"
    )
    assert "oldest_job=U" in first  # no value given


def test_an_unchecked_check_makes_the_state_unknown_never_ok():
    """OPS_READ_LOCK_TIMEOUT=nan used to leave six checks unknown and say OK: an unchecked check is UNKNOWN
    (exit 3), under a CRITICAL when there is one."""
    report = HealthReport()
    for name in CHECKS:
        report.add(Check(name, "ok", "fine"))
    report.checks.pop("refresh")
    report.close(10, [])
    assert report.checks["refresh"].state == "unknown" and report.state == "unknown" and report.exit_code == 3
    report.checks["queue"] = Check("queue", "critical", "too many")
    assert report.state == "critical" and report.exit_code == 2
