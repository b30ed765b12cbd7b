-- `ops refresh` on a database built by Panoramax: what its own `db refresh` does, with the same lock
-- (the single row of refresh_database, taken NOWAIT: one refresh at a time, across Panoramax and ops),
-- calling Panoramax's own functions.

-- name: lock
SELECT refreshed_at FROM refresh_database FOR UPDATE NOWAIT;

-- name: holder
-- The session holding refresh_database's row (FOR UPDATE takes ROW SHARE on the table): a refresh running,
-- or one whose caller was killed and that ends at its lock or statement timeout.
SELECT a.pid, a.xact_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.relation = 'refresh_database'::regclass AND l.mode = 'RowShareLock' AND l.granted
  AND l.pid <> pg_backend_pid()
ORDER BY a.xact_start LIMIT 1;

-- name: mark
UPDATE refresh_database SET refreshed_at = now();

-- name: drop_expired_cells
-- The expired cells' rows go first (in the refresh's transaction: readers keep seeing the old ones until it
-- commits): Panoramax's recompute below re-inserts the cells that still hold pictures, and only those, so a
-- cell whose pictures were all deleted leaves the map instead of keeping their count.
DELETE FROM pictures_aggregate_grid g USING pictures_aggregate_grid_expired e
WHERE e.geom = g.geom AND e.inserted_at <= now();

-- name: expired
-- Recomputes the grid cells expired before it started, and forgets them; returns how many it updated.
SELECT compute_pictures_aggregate_grid_expired();

-- name: full
-- The whole grid rebuilt inside the caller's transaction: readers wait for the commit (TRUNCATE's lock),
-- they never see an empty grid.
SELECT compute_pictures_aggregate_grid();

-- name: forget_expired
-- After a full rebuild every cell is fresh.
DELETE FROM pictures_aggregate_grid_expired WHERE inserted_at <= now();

-- name: count_cells
SELECT count(*) FROM pictures_aggregate_grid;

-- name: last_refresh
SELECT max(refreshed_at) FROM refresh_database;

-- Deleting pictures expires their grid cells (Panoramax's own deletion does not, so its map kept deleted
-- pictures until a full rebuild): run in the transaction that deletes them, before the DELETE, where the
-- grid exists. pic_to_grid is Panoramax's own cell rule.

-- name: expire_selection
INSERT INTO pictures_aggregate_grid_expired (geom)
SELECT DISTINCT pic_to_grid(p.geom) FROM pictures p JOIN cleanup_pictures c ON c.id = p.id
ON CONFLICT (geom) DO UPDATE SET inserted_at = CURRENT_TIMESTAMP;

-- name: expire_pictures
INSERT INTO pictures_aggregate_grid_expired (geom)
SELECT DISTINCT pic_to_grid(p.geom) FROM pictures p WHERE p.id = ANY(%(pic_ids)s::uuid[])
ON CONFLICT (geom) DO UPDATE SET inserted_at = CURRENT_TIMESTAMP;
