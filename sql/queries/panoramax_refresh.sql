-- `ops refresh` on a database built by Panoramax: what its own `db refresh` does, with the same lock
-- (the single row of refresh_database, taken NOWAIT: one refresh at a time, across Panoramax and ops),
-- calling Panoramax's own functions.

-- name: lock
SELECT refreshed_at FROM refresh_database FOR UPDATE NOWAIT;

-- name: mark
UPDATE refresh_database SET refreshed_at = now();

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
