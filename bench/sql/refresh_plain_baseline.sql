-- Baseline of `ops db refresh --view pictures_grid`: a plain refresh, which blocks the view's readers.
REFRESH MATERIALIZED VIEW pictures_grid
