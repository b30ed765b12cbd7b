-- Who holds what: the sessions named when a lock is waited for (pg_locks, pg_stat_activity). Read-only.

-- name: advisory_holder
-- The session holding a session-level advisory lock, by its key's two halves.
SELECT a.pid, a.application_name, a.client_addr::text, a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = %(classid)s::bigint::oid AND l.objid = %(objid)s::bigint::oid AND l.objsubid = 1
  AND a.pid <> pg_backend_pid()
LIMIT 1

-- name: strong_locks
-- Sessions holding a strong lock on a table of this database: what a statement that timed out on a lock
-- most likely waited for.
SELECT l.relation::regclass::text, l.mode, a.pid, a.application_name, a.client_addr::text, a.xact_start
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.mode IN ('AccessExclusiveLock', 'ExclusiveLock', 'ShareRowExclusiveLock', 'ShareLock')
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY l.mode = 'AccessExclusiveLock' DESC, a.xact_start NULLS LAST, l.pid
LIMIT 5

-- name: blockers
-- The sessions blocking a given backend.
SELECT a.pid, a.application_name, a.client_addr::text, a.xact_start, left(a.query, 200)
FROM pg_stat_activity a WHERE a.pid = ANY(pg_blocking_pids(%(pid)s))

-- name: blockers_of_app
-- The sessions blocking any session of an application_name (a library's connections, whose pids ops does
-- not see) in this database.
SELECT DISTINCT b.pid, b.application_name, b.client_addr::text, b.xact_start, left(b.query, 200)
FROM pg_stat_activity w JOIN pg_stat_activity b ON b.pid = ANY(pg_blocking_pids(w.pid))
WHERE w.application_name = %(app)s AND w.datname = current_database()
