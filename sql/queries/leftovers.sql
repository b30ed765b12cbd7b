-- What a migration without a transaction leaves when it is killed: the indexes it builds concurrently.

-- name: index_state
-- Whether the index a pending migration builds exists already (valid: the build finished; not valid: it was
-- killed during the build), in the schema it names or, when it names none, the one the search path finds.
SELECT i.indisvalid
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_index i ON i.indexrelid = c.oid
WHERE c.relkind = 'i' AND c.relname = %(name)s
  AND (n.nspname = %(schema)s OR (%(schema)s::text IS NULL AND pg_table_is_visible(c.oid)))

-- name: drop_index
-- The index left by a killed run, dropped without blocking the table's writes before the migration builds it
-- again.
DROP INDEX CONCURRENTLY IF EXISTS {index}
