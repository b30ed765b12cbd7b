"""Every command of ops, one spec each: its name, its CLI function, its core function, what it uses of the
schema, whether it may write, and the SQL files it runs.

Everything that needs the list of commands is derived from here: the CLI's lazy table (``ops/cli``), the
capability guard of each command (``ops.cli.common.database``), ``ops db status``'s readiness list on a
Panoramax-managed database, the sessions that are read-only by force, the command reference (docs/reference.md), and
the imports the benchmark baselines pay. ``tests/test_commands.py`` fails when a Click command has no spec,
a spec no command, or a piece of a spec does not exist. Light on purpose: imported when the CLI starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ops.schema.needs import DELETE_JOBS, HISTORY, SEQUENCE_TARGETS, Needs, merged


@dataclass(frozen=True)
class Spec:
    path: str  # as typed: "sequences reorder"
    cli: str  # "module:function" of the Click command
    core: str  # "module:function" it calls for the work
    needs: Needs | None  # what it uses of a Panoramax-managed schema; None: no schema guard (db, local-db)
    writes: bool  # may write (else its sessions are read-only by force)
    sql: tuple[str, ...] = ()  # files of sql/queries it runs

    @property
    def guarded(self) -> bool:
        return self.needs is not None


# Groups: containers of commands, imported when one of their commands is looked up.
GROUPS = {
    "db": "ops.cli.db:db",
    "sequences": "ops.cli.sequences:sequences",
    "storage": "ops.cli.files:storage",
    "jobs": "ops.cli.jobs:jobs",
    "tokens": "ops.cli.accounts:tokens_group",
    "default-account-tokens": "ops.cli.accounts:default_account_tokens",
    "local-db": "ops.cli.localdb:local_db",
}

_REORDER = SEQUENCE_TARGETS | Needs(
    {"sequences": ("geom", "bbox", "min_picture_ts", "max_picture_ts", "nb_pictures", "updated_at"),
     "pictures": ("id", "ts", "metadata", "geom")},
    functions=("compute_sequence_geom", "compute_sequence_bbox"),
)  # fmt: skip
_HEADINGS = SEQUENCE_TARGETS | Needs({"pictures": ("id", "geom", "heading", "heading_computed")})
_CLEANUP = SEQUENCE_TARGETS | DELETE_JOBS | Needs({"pictures": ("upload_set_id",), "upload_sets": ("id",)})
_REFRESH = Needs({"refresh_database": ("refreshed_at",)})
_JOBS = HISTORY | Needs({"pictures": ("id",), "sequences": ("id",), "upload_sets": ("id",)})
_USER = DELETE_JOBS | Needs(
    {"accounts": ("id", "name", "role", "is_default", "created_at"), "sequences": ("account_id", "status", "updated_at"),
     "pictures": ("account_id",), "upload_sets": ("id", "account_id"), "tokens": ("account_id",)},
    {"account_role": ("admin", "user"), "sequence_status": ("deleted",)},
)  # fmt: skip
_STORAGE_CHECK = Needs(
    {"pictures": ("id", "status", "original_content_md5"), "sequences_pictures": ("seq_id", "pic_id")}
)
_ORPHANS = Needs({"pictures": ("id",), "job_queue": ("picture_to_delete_id",)})
_TOKEN = Needs({"accounts": ("id", "is_default"), "tokens": ("id", "account_id", "generated_at")})
_VERIFY = Needs({"accounts": ("id", "name"), "tokens": ("id", "account_id")})
_REFRESH_SQL = ("panoramax_refresh", "bookkeeping")

SPECS: tuple[Spec, ...] = (
    Spec("db upgrade", "ops.cli.db:upgrade", "ops.schema.runner:upgrade", None, True, ("bookkeeping", "panoramax_upgrade")),
    Spec("db rollback", "ops.cli.db:rollback", "ops.schema.runner:rollback", None, True, ("bookkeeping",)),
    Spec("db status", "ops.cli.db:status", "ops.schema.status:migration_status", None, False, ("sequence_targets",)),
    Spec("db plan", "ops.cli.plan:plan_command", "ops.plan.planner:make_plan", None, False, ("plan",)),
    Spec("db refresh", "ops.cli.db:refresh", "ops.refresh:refresh", _REFRESH, True, _REFRESH_SQL),
    Spec("refresh", "ops.cli.db:refresh", "ops.refresh:refresh", _REFRESH, True, _REFRESH_SQL),
    Spec("sequences reorder", "ops.cli.sequences:reorder", "ops.sequences:reorder", _REORDER, True,
         ("sequence_targets", "reorder_ranks", "sequence_derived", "capabilities")),
    Spec("set-sequences-heading", "ops.cli.sequences:set_sequences_heading", "ops.sequences:set_headings", _HEADINGS,
         True, ("sequence_targets", "headings")),
    Spec("cleanup", "ops.cli.files:cleanup", "ops.cleanup:cleanup", _CLEANUP, True,
         ("cleanup_select", "cleanup_delete", "cleanup_all_counts", "cleanup_all_delete", "jobs_enqueue_delete",
          "capabilities", "cleaned_earlier", "sequence_links", "sequence_targets", "panoramax_refresh", "jobs_claim", "jobs_finish")),
    Spec("storage check", "ops.cli.files:check_command", "ops.storage_check:check", _STORAGE_CHECK, False,
         ("storage_check", "sequence_targets")),
    Spec("storage orphans", "ops.cli.files:orphans", "ops.storage_orphans:find_orphans", _ORPHANS, True,
         ("orphans_check",)),
    Spec("worker", "ops.cli.files:worker", "ops.jobs:run_worker", DELETE_JOBS, True,
         ("jobs_claim", "jobs_finish", *_REFRESH_SQL)),
    Spec("jobs", "ops.cli.jobs:jobs", "ops.job_admin:summary", _JOBS, False, ("jobs_view",)),
    Spec("jobs list", "ops.cli.jobs:list_command", "ops.job_admin:list_jobs", _JOBS, False, ("jobs_view",)),
    Spec("jobs retry", "ops.cli.jobs:retry", "ops.job_admin:retry", _JOBS, True, ("jobs_view",)),
    Spec("jobs prune", "ops.cli.jobs:prune", "ops.job_admin:prune", _JOBS, True, ("jobs_view",)),
    Spec("health", "ops.cli.health:health", "ops.health:run", None, False, ("jobs_view", "panoramax_refresh")),
    Spec("doctor", "ops.cli.doctor:doctor", "ops.doctor:run", None, False,
         ("doctor", "capabilities", "sequence_targets", "reorder_ranks", "panoramax_refresh")),
    Spec("default-account-tokens get", "ops.cli.accounts:get", "ops.tokens:default_account_token_id", _TOKEN, False),
    Spec("tokens verify", "ops.cli.accounts:verify", "ops.tokens:verify", _VERIFY, False),
    Spec("user", "ops.cli.accounts:user", "ops.accounts:manage", _USER, True,
         ("account_counts", "delete_data_batch", "capabilities", "jobs_claim", "jobs_finish", "panoramax_refresh")),
    Spec("local-db start", "ops.cli.localdb:start", "ops.localdb:LocalCluster.start", None, True),
    Spec("local-db stop", "ops.cli.localdb:stop", "ops.localdb:LocalCluster.stop", None, True),
    Spec("local-db status", "ops.cli.localdb:status", "ops.localdb:LocalCluster.running_port", None, False),
    Spec("local-db url", "ops.cli.localdb:url", "ops.localdb:LocalCluster.url", None, False),
)  # fmt: skip

_BY_PATH = {s.path: s for s in SPECS}


def spec(path: str) -> Spec:
    """The spec of a command by its path (a KeyError names a command without one: a bug a test catches)."""
    return _BY_PATH[path]


def guarded() -> list[Spec]:
    """The commands the capability guard checks on a Panoramax-managed database, in the CLI's order."""
    return [s for s in SPECS if s.needs is not None]


def all_needs() -> Needs:
    """Everything the maintenance commands need together (``ops health``'s schema check)."""
    return merged([s.needs for s in guarded() if s.needs is not None])


def lazy_table() -> dict[str, tuple[str, str]]:
    """Top-level name -> (module, attribute) of what ``ops <name>`` runs: a group, or a command."""
    table = {name: tuple(target.split(":")) for name, target in GROUPS.items()}
    for s in SPECS:
        if " " not in s.path:
            table.setdefault(s.path, tuple(s.cli.split(":")))
    return {name: (module, attr) for name, (module, attr) in table.items()}
