-- Baseline of `ops refresh` on a Panoramax database: Panoramax's own recompute of the expired grid cells, the
-- one set-based statement that does the work, called by hand in one transaction.
SELECT compute_pictures_aggregate_grid_expired()
