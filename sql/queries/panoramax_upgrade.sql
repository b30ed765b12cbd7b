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
