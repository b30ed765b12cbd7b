-- What a database has of what the commands need (ops.schema.capabilities): catalogs only.

-- name: columns
SELECT c.relname, a.attname FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%(tables)s)

-- name: enum_labels
SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
WHERE t.typname = ANY(%(types)s)

-- name: functions
SELECT DISTINCT proname FROM pg_proc WHERE proname = ANY(%(names)s)

-- name: panoramax_history
-- Panoramax's migration history (yoyo's default table), read to recognise the database, never written.
SELECT migration_id, applied_at_utc FROM _yoyo_migration ORDER BY applied_at_utc, migration_id

-- name: one_delete_job_per_picture
-- Whether job_queue holds at most one job per picture to delete (a unique index on picture_to_delete_id,
-- Panoramax 2.10 and ops): the commands that queue delete jobs merge into the queued one with ON CONFLICT;
-- without it (Panoramax 2.8, 2.9) they update the queued ones, then insert the others.
SELECT EXISTS (
    SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = to_regclass('job_queue') AND i.indisunique AND i.indnatts = 1
      AND a.attname = 'picture_to_delete_id'
)

-- name: sequence_rule
-- The bodies of the database's compute_sequence_geom and compute_sequence_bbox, as md5 of their source: the
-- sequence geometry rule is computed set-based where they are ones ops knows (capabilities.SEQUENCE_RULES).
SELECT p.proname, md5(p.prosrc) FROM pg_proc p
WHERE p.pronamespace = current_schema()::regnamespace
  AND p.proname IN ('compute_sequence_geom', 'compute_sequence_bbox')
