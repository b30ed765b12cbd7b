-- ops db upgrade --panoramax: what the progress lines and the ANALYZE between migrations run.

-- name: running
-- What the upgrade's sessions (its application_name) run, and for how long (the progress line).
SELECT extract(epoch FROM now() - query_start)::float8, left(regexp_replace(query, '\s+', ' ', 'g'), 120)
FROM pg_stat_activity
WHERE application_name = %(app)s AND datname = current_database() AND state = 'active'
ORDER BY query_start LIMIT 1

-- name: analyze
-- The statistics of a table whose columns an earlier migration of the same upgrade added (the plan's warning
-- that ops handles itself): run between the two migrations.
ANALYZE {table}

-- name: lock_row
-- yoyo's lock row, as yoyo inserts it for flask db upgrade (locked = 1 is its primary key), but in a
-- transaction ops keeps open for the whole run and rolls back at its end: another upgrade waits on it as on
-- yoyo's own row, and a killed run leaves none behind.
INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now() AT TIME ZONE 'utc', %(pid)s)

-- name: lock_wait
-- How long the lock row's insert waits behind another run's (uncommitted) row, in this transaction.
SELECT set_config('lock_timeout', %(wait)s, true)

-- name: lock_holder
-- The process that holds yoyo's committed lock row (a running or killed flask db upgrade, yoyo's CLI).
SELECT pid FROM yoyo_lock
