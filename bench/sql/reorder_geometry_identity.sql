-- What `ops sequences reorder` left, against the database's own functions: how many sequences (not deleted)
-- have the geometry (EWKB) and bbox that compute_sequence_geom and compute_sequence_bbox give for their
-- ranks, and how many there are.
SELECT count(*) FILTER (WHERE ST_AsEWKB(geom) IS NOT DISTINCT FROM ST_AsEWKB(compute_sequence_geom(id))
                          AND bbox::text IS NOT DISTINCT FROM compute_sequence_bbox(id)::text),
       count(*)
FROM sequences WHERE status <> 'deleted'
