-- ops db plan (ops.plan): the scratch database's life, the trace of each replayed statement (catalogs
-- only), and what production tells of the relations involved (catalogs and statistics only: never a row).

-- name: leftovers
-- Scratch databases of this database (their names carry its oid): dropped when their creator is gone.
SELECT datname FROM pg_database
WHERE datname LIKE 'ops\_plan\_scratch\_' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '\_%'
ORDER BY datname

-- name: leftover_roles
-- The roles of the scratch databases of this database (each named after its database).
SELECT rolname FROM pg_roles
WHERE rolname LIKE 'ops\_plan\_scratch\_' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '\_%'
ORDER BY rolname

-- name: create_database
CREATE DATABASE {database} TEMPLATE template0

-- name: create_role
-- The role the replay runs as: it may log in nowhere, create no database or role, and owns the scratch
-- database alone, so no statement it runs reaches production, its server's settings or another database.
CREATE ROLE {role} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS

-- name: grant_role
-- The plan's own session may then act as it (SET ROLE, or the role option of the scratch connections).
GRANT {role} TO CURRENT_USER

-- name: database_owner
ALTER DATABASE {database} OWNER TO {role}

-- name: create_extension
-- Production's extensions, created in the scratch database by the plan's own role before the restore (the
-- replay's role may not create an untrusted extension such as PostGIS).
CREATE EXTENSION IF NOT EXISTS {extension} WITH SCHEMA {schema} CASCADE

-- name: parameters_to_grant
-- The settings only a superuser may change that migrations change (Panoramax's batch updates set
-- session_replication_role) and that the plan's own role may change: the replay's role may change them too.
SELECT name FROM unnest(ARRAY['session_replication_role']) AS name
WHERE has_parameter_privilege(current_user, name, 'SET')

-- name: grant_parameter
GRANT SET ON PARAMETER {parameter} TO {role}

-- name: drop_role_grants
-- What the replay's role holds beyond the scratch database (its grants on settings), given back first.
DROP OWNED BY {role}

-- name: drop_role
DROP ROLE IF EXISTS {role}

-- name: current_role
SELECT current_user::text

-- name: drop_database
DROP DATABASE IF EXISTS {database} WITH (FORCE)

-- name: populated_views
-- Production's populated materialized views, in creation order.
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND c.relispopulated ORDER BY c.oid

-- name: refresh_view
REFRESH MATERIALIZED VIEW {schema}.{view}

-- name: user_objects
-- What a database holds besides the system's and its extensions' (PostGIS created by a DBA): an operator's
-- --scratch-url must hold nothing else.
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg\_temp%'
          AND n.nspname NOT LIKE 'pg\_toast\_temp%' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.deptype = 'e'))
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.deptype = 'e'))

-- name: scratch_identity
-- An operator's --scratch-url: its name, whether it is a template, and which server and database it is
-- (compared with production's: the same postmaster start and database oid is the same database).
SELECT current_database(), d.datistemplate, pg_postmaster_start_time(), d.oid
FROM pg_database d WHERE d.datname = current_database()

-- name: extensions
SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY 1

-- name: drop_extension
DROP EXTENSION IF EXISTS {extension} CASCADE

-- name: recreate_public
-- An emptied --scratch-url database gets back the schema every new database has.
CREATE SCHEMA IF NOT EXISTS public

-- name: user_schemas
SELECT nspname FROM pg_namespace
WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND nspname NOT LIKE 'pg\_temp%'
  AND nspname NOT LIKE 'pg\_toast\_temp%'

-- name: drop_schema
DROP SCHEMA {schema} CASCADE

-- name: create_schema
CREATE SCHEMA {schema}

-- name: loose_relations
-- The tables, views and sequences of the schemas kept (those of the DBA's extensions) that no extension owns.
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.deptype IN ('e', 'a', 'i'))

-- name: drop_relation
-- A relation of any kind: DROP TABLE refuses views and sequences, so the kind is read first.
SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                      WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END
FROM pg_class c WHERE c.oid = to_regclass(%(qualified)s)

-- name: mark_scratch
-- An operator's --scratch-url being filled: its marker schema records the extensions a DBA put there.
COMMENT ON SCHEMA {schema} IS {extensions}

-- name: drop_kind
-- A relation of the kind drop_relation read (TABLE, VIEW…: one of five words of this file), then its name.
DROP {kind} IF EXISTS {name} CASCADE

-- name: drop_routine
-- A function or procedure, as regprocedure wrote it (quoted by PostgreSQL itself).
DROP ROUTINE IF EXISTS {routine} CASCADE

-- name: drop_type
DROP {kind} IF EXISTS {name} CASCADE

-- name: loose_routines
-- The functions and procedures of the schemas kept that no extension owns, as regprocedure (quoted by
-- PostgreSQL itself).
SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = ANY(%(schemas)s)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                  AND d.deptype = 'e')

-- name: loose_types
SELECT n.nspname, t.typname, t.typtype = 'd' FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_class c ON c.oid = t.typrelid
WHERE n.nspname = ANY(%(schemas)s) AND (t.typtype IN ('d', 'e', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                  AND d.deptype = 'e')

-- name: relations
-- Every table, materialized view and index, with its storage file: a new relfilenode is a rewrite. For
-- an index, its table and its access method; the check and foreign-key constraints validated and the
-- NOT NULL columns of each table, whose appearance means a scan of the table; and the table's columns. An
-- index's first key column (NULL for an expression) and whether its type is passed by value (a number, a
-- time: cheaper to compare than a uuid or a text): with how its table is ordered by it, how dear its sort is.
SELECT c.oid, n.nspname, c.relname, c.relkind, c.relfilenode, am.amname, i.indrelid,
       (SELECT array_agg(conname ORDER BY conname) FROM pg_constraint
        WHERE conrelid = c.oid AND contype IN ('c', 'f') AND convalidated) AS validated,
       (SELECT array_agg(attname ORDER BY attname) FROM pg_attribute
        WHERE attrelid = c.oid AND attnum > 0 AND attnotnull AND NOT attisdropped) AS not_null,
       (SELECT array_agg(attname ORDER BY attnum) FROM pg_attribute
        WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped AND c.relkind IN ('r', 'p', 'm')) AS columns,
       (SELECT attname FROM pg_attribute WHERE attrelid = i.indrelid AND attnum = i.indkey[0]) AS first_key,
       (SELECT t.typbyval FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[0]) AS narrow_key
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_am am ON am.oid = c.relam AND c.relkind IN ('i', 'I')
LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE c.relkind IN ('r', 'p', 'm', 'i', 'I')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg\_temp%'

-- name: locks
-- The relation locks a session holds or waits for, in this database.
SELECT relation, mode, granted FROM pg_locks
WHERE pid = %(pid)s AND locktype = 'relation'
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())

-- name: waiting
-- Whether a session waits (a non-transactional statement waiting for older snapshots shows its locks).
SELECT wait_event_type, state FROM pg_stat_activity WHERE pid = %(pid)s

-- name: sizes
-- What production holds in the relations a plan involves, by name: sizes and row counts from the
-- catalogs and the statistics collector (no table is read).
SELECT q.nspname, q.relname, c.relkind, pg_relation_size(c.oid) AS bytes,
       CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint
            ELSE coalesce(s.n_live_tup, 0) END AS row_count,
       (SELECT count(*) FROM pg_index WHERE indrelid = c.oid) AS nb_indexes,
       coalesce(pg_indexes_size(c.oid), 0) AS index_bytes
FROM unnest(%(schemas)s::text[], %(names)s::text[]) AS q(nspname, relname)
JOIN pg_namespace n ON n.nspname = q.nspname
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = q.relname
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid

-- name: correlations
-- How production's tables are ordered by each column (pg_stats.correlation: 1 or -1 in the table's physical
-- order, 0 at random), from the statistics ANALYZE keeps (no table is read).
SELECT s.schemaname, s.tablename, s.attname, s.correlation
FROM pg_stats s
JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS q(nspname, relname)
  ON s.schemaname = q.nspname AND s.tablename = q.relname
WHERE s.correlation IS NOT NULL AND NOT s.inherited

-- name: applied_hashes
-- Panoramax's history as yoyo reads it to find what is pending (never written).
SELECT migration_hash FROM _yoyo_migration

-- name: calibrate_table
-- The calibration sample: rows shaped like a picture (a uuid, a time, a point, an enum-like text, some
-- metadata), in the scratch database only.
CREATE TABLE ops_plan_calibration AS
SELECT g AS n, md5(g::text)::uuid AS id, now() - g * interval '1 second' AS ts, random() AS r,
       ST_SetSRID(ST_MakePoint(random() * 10, 40 + random() * 10), 4326) AS geom,
       (ARRAY['ready', 'hidden', 'preparing'])[1 + mod(g, 3)] AS status,
       jsonb_build_object('type', 'flat', 'originalFileName', 'IMG_' || g || '.jpg', 'make', 'Camera') AS metadata
FROM generate_series(1, %(rows)s) AS g

-- name: calibrate_table_plain
-- The same without the point, in a database without PostGIS (before ops's first migration installs it).
CREATE TABLE ops_plan_calibration AS
SELECT g AS n, md5(g::text)::uuid AS id, now() - g * interval '1 second' AS ts, random() AS r,
       (ARRAY['ready', 'hidden', 'preparing'])[1 + mod(g, 3)] AS status,
       jsonb_build_object('type', 'flat', 'originalFileName', 'IMG_' || g || '.jpg', 'make', 'Camera') AS metadata
FROM generate_series(1, %(rows)s) AS g

-- name: calibrate_analyze
VACUUM ANALYZE ops_plan_calibration

-- name: calibrate_vacuum
VACUUM ops_plan_calibration

-- name: calibrate_drop
DROP TABLE IF EXISTS ops_plan_calibration

-- name: calibrate_scan
SELECT count(*) FROM ops_plan_calibration WHERE metadata->>'make' = 'none'

-- name: calibrate_btree
CREATE INDEX ops_plan_calibration_btree ON ops_plan_calibration (id)

-- name: calibrate_read
-- A plain read of the sample, as an index build reads its table.
SELECT count(*) FROM ops_plan_calibration

-- name: calibrate_btree_narrow
-- A btree on a key passed by value (a number, a time) in random order.
CREATE INDEX ops_plan_calibration_narrow ON ops_plan_calibration (r)

-- name: calibrate_btree_sorted
-- A btree on a key in the table's own order (correlation 1), such as a capture time of pictures inserted
-- as they come: its sort finds the rows presorted.
CREATE INDEX ops_plan_calibration_sorted ON ops_plan_calibration (n)

-- name: calibrate_drop_extra
DROP INDEX ops_plan_calibration_narrow, ops_plan_calibration_sorted

-- name: calibrate_gist
CREATE INDEX ops_plan_calibration_gist ON ops_plan_calibration USING gist (geom)

-- name: calibrate_update
UPDATE ops_plan_calibration SET status = status || ''

-- name: calibrate_rewrite
ALTER TABLE ops_plan_calibration ALTER COLUMN n TYPE bigint

-- name: calibrate_size
SELECT pg_relation_size('ops_plan_calibration')

-- name: shared_writes
-- The rows this session has inserted, updated or deleted in the cluster's shared catalogs (roles, databases,
-- tablespaces, their settings and comments) since its statistics were last flushed: never within a
-- transaction block, so two readings in one transaction differ by what the transaction wrote there.
-- pg_shdepend is left out: it records which role owns an object of this database (every object the replay's
-- own role creates gets a row), nothing beyond it.
SELECT coalesce(sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del), 0)::bigint
FROM pg_stat_xact_all_tables s JOIN pg_class c ON c.oid = s.relid
WHERE c.relisshared AND c.relname <> 'pg_shdepend'
