-- Pictures visible on the map (status ready) per 0.1 degree cell: what a map needs at low zoom.
-- id identifies the cell: (cell_x + 1800) * 10000 + (cell_y + 900), cell_x/cell_y = floor(lon/lat * 10).
CREATE MATERIALIZED VIEW pictures_grid AS
WITH cells AS (
    SELECT floor(ST_X(geom) * 10)::int AS cell_x,
           floor(ST_Y(geom) * 10)::int AS cell_y,
           metadata ->> 'type' = 'equirectangular' AS is_360
    FROM pictures
    WHERE status = 'ready'
)
SELECT (cell_x + 1800)::bigint * 10000 + (cell_y + 900) AS id,
       cell_x,
       cell_y,
       ST_MakeEnvelope(cell_x / 10.0, cell_y / 10.0, (cell_x + 1) / 10.0, (cell_y + 1) / 10.0, 4326) AS geom,
       count(*) AS nb_pictures,
       count(*) FILTER (WHERE is_360) AS nb_360_pictures
FROM cells
GROUP BY cell_x, cell_y;

CREATE UNIQUE INDEX pictures_grid_id_idx ON pictures_grid (id);

CREATE INDEX pictures_grid_geom_idx ON pictures_grid USING gist (geom);
