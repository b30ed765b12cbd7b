"""The role a plan's replay runs as, in the scratch database ops created for it.

The replay runs as a role of its own (named after the database, which it owns; dropped with it, or with the
leftovers of a killed plan): no superuser, no CREATEDB or CREATEROLE, no
login. What the vetting (``ops.plan.vet``) did not foresee still cannot reach production, another database,
a role or the server's settings: PostgreSQL refuses it. Where that cannot be (a role without CREATEROLE, an
operator's ``--scratch-url``, PostgreSQL before 15), the plan says the replay ran unconfined, and why.
"""

from __future__ import annotations

import psycopg
from psycopg import conninfo

from ops import db, queries


def extensions(conn: psycopg.Connection) -> dict[str, str]:
    """The extensions of the database behind ``conn``: name -> schema."""
    return dict(conn.execute(queries.statement("plan", "extensions")).fetchall())


def drop_role(admin: psycopg.Connection, role: str) -> None:
    if db.scalar(admin, "SELECT to_regrole(%s) IS NOT NULL", (role,)):
        admin.execute(queries.identified("plan", "drop_role_grants", role=role))
        admin.execute(queries.identified("plan", "drop_role", role=role))


def confine(admin: psycopg.Connection, name: str, scratch_url: str) -> str | None:
    """Make the role the replay runs as (named after the scratch database ``name``, which it comes to own):
    no superuser, no CREATEDB or CREATEROLE, no login, so even a statement the vetting did not foresee cannot
    reach production, another database, a role or the server's settings. Production's extensions are created
    in the scratch database first, by this role (the replay's may not create PostGIS). Returns why the replay
    runs unconfined instead (as this role), or None."""
    if db.server_major_version(admin) < 15:
        return "PostgreSQL 15 or later confines it (a role of its own that may set session_replication_role)"
    made = extensions(admin)
    outside = sorted(e for e, schema in made.items() if schema not in ("public", "pg_catalog"))
    if outside:
        return f"the extension {outside[0]} lives in schema {made[outside[0]]}, which the copy creates"
    try:
        admin.execute(queries.identified("plan", "create_role", role=name))
    except psycopg.errors.InsufficientPrivilege:
        return "this role may not create roles (CREATEROLE)"
    try:
        admin.execute(queries.identified("plan", "grant_role", role=name))
        for (parameter,) in admin.execute(queries.statement("plan", "parameters_to_grant")).fetchall():
            admin.execute(queries.identified("plan", "grant_parameter", parameter=parameter, role=name))
    except psycopg.errors.InsufficientPrivilege as e:
        drop_role(admin, name)
        return f"this role may not give it what the migrations need ({' '.join(str(e).split())})"
    admin.execute(queries.identified("plan", "database_owner", database=name, role=name))
    with db.connect(scratch_url, autocommit=True) as conn:
        for extension, schema in made.items():
            conn.execute(queries.identified("plan", "create_extension", extension=extension, schema=schema))
    return None


def as_role(url: str, role: str) -> str:
    """``url`` whose sessions act as ``role`` from their start (libpq's ``options``)."""
    params = conninfo.conninfo_to_dict(url)
    params["options"] = f"-c role={role}"
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})
