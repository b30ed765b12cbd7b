-- Statements on objects named at run time: each {placeholder} is filled with a quoted identifier
-- (psycopg.sql.Identifier), never with text.

-- name: rename_table
ALTER TABLE {old} RENAME TO {new}

-- name: drop_table
DROP TABLE IF EXISTS {table}

-- name: drop_view
DROP MATERIALIZED VIEW IF EXISTS {view}

-- name: refresh_view
REFRESH MATERIALIZED VIEW {view}

-- name: refresh_view_concurrently
-- Readers are not blocked; needs the view populated, with a unique index.
REFRESH MATERIALIZED VIEW CONCURRENTLY {view}

-- name: create_database
CREATE DATABASE {database}

-- name: jit_off
-- What ops db status tells an operator to run to remove JIT from a database (ops never runs it).
ALTER DATABASE {database} SET jit = off
