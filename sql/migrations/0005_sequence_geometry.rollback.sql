DROP FUNCTION compute_sequence_bbox(uuid);
DROP FUNCTION compute_sequence_geom(uuid);
