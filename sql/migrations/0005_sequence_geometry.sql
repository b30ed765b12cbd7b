-- depends: 0004_job_queue
-- The geometry and bounding box of a sequence by the rule Panoramax applies, under the names and
-- signatures of its own functions, so that one statement (ops sequences reorder) fits a database built by
-- ops and one built by Panoramax alike: the line through the pictures in rank order, split where two
-- consecutive pictures are more than 75 m apart (a gap in the capture), as a MultiLineString; NULL when
-- no segment is left. STABLE, not IMMUTABLE: they read tables.

CREATE FUNCTION compute_sequence_geom(sequence_id uuid) RETURNS geometry
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH segments AS (
        SELECT sp.rank, ST_MakeLine(lag(p.geom) OVER (ORDER BY sp.rank), p.geom) AS segment
        FROM sequences_pictures sp
        JOIN pictures p ON p.id = sp.pic_id
        WHERE sp.seq_id = sequence_id
    ), merged AS (
        SELECT ST_LineMerge(ST_Collect(segment ORDER BY rank)) AS geom
        FROM segments
        WHERE segment IS NOT NULL AND ST_Length(segment::geography) <= 75
    )
    SELECT ST_Multi(geom) FROM merged WHERE NOT ST_IsEmpty(geom)
$$;

CREATE FUNCTION compute_sequence_bbox(sequence_id uuid) RETURNS box2d
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT ST_Extent(p.geom)
    FROM sequences_pictures sp
    JOIN pictures p ON p.id = sp.pic_id
    WHERE sp.seq_id = sequence_id
$$;
