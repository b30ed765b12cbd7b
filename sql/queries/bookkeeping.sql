-- The bookkeeping tables of ops (beside yoyo's own): created by the runner when missing.

-- name: ops_migrations
-- One row per applied migration: the SHA-256 of its normalised content (edits show in `ops db status`)
-- and how long it took.
CREATE TABLE IF NOT EXISTS ops_migrations (
    migration_id text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    duration_ms integer
);

-- name: ops_views
-- One row per materialized view of sql/views: its file's checksum (a change means drop and re-create)
-- and its last refresh.
CREATE TABLE IF NOT EXISTS ops_views (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    refreshed_at timestamptz,
    refresh_duration_ms integer,
    nb_rows bigint
);

-- name: record_applied
-- Recorded by the runner in the transaction that applies the migration.
INSERT INTO ops_migrations (migration_id, checksum, duration_ms) VALUES (%(id)s, %(checksum)s, %(duration_ms)s)
ON CONFLICT (migration_id) DO UPDATE
SET checksum = EXCLUDED.checksum, applied_at = now(), duration_ms = EXCLUDED.duration_ms;

-- name: forget_applied
DELETE FROM ops_migrations WHERE migration_id = %(id)s;

-- name: known_views
SELECT name, checksum FROM ops_views ORDER BY name;

-- name: record_view
-- A view just created (or re-created): populated or created WITH NO DATA (never refreshed then).
INSERT INTO ops_views (name, checksum, refreshed_at, refresh_duration_ms, nb_rows)
VALUES (%(name)s, %(checksum)s, CASE WHEN %(populated)s THEN now() END, %(duration_ms)s, %(nb_rows)s)
ON CONFLICT (name) DO UPDATE
SET checksum = EXCLUDED.checksum, created_at = now(), refreshed_at = EXCLUDED.refreshed_at,
    refresh_duration_ms = EXCLUDED.refresh_duration_ms, nb_rows = EXCLUDED.nb_rows;

-- name: forget_view
DELETE FROM ops_views WHERE name = %(name)s;

-- name: forget_all_views
DELETE FROM ops_views;

-- name: record_refresh
UPDATE ops_views SET refreshed_at = now(), refresh_duration_ms = %(duration_ms)s, nb_rows = %(nb_rows)s
WHERE name = %(name)s;

-- name: view_status
-- Every view ops created, whether it holds data, and its last refresh.
SELECT v.name, coalesce(m.ispopulated, false), v.refreshed_at, v.refresh_duration_ms, v.nb_rows
FROM ops_views v
LEFT JOIN pg_matviews m ON m.matviewname = v.name AND m.schemaname = current_schema()
ORDER BY v.name;
