-- The set-based geometry of the reorder baseline against the database's own compute_sequence_geom, for
-- every sequence of the instance: how many are byte-identical (EWKB), and how many sequences there are.
WITH pics AS (
    SELECT sp.seq_id, sp.rank, p.geom FROM sequences_pictures sp JOIN pictures p ON p.id = sp.pic_id
), lines AS (
    SELECT seq_id, ST_MakeLine(geom ORDER BY rank) AS line FROM pics GROUP BY seq_id
), segments AS (
    SELECT l.seq_id, d.path, d.geom AS segment FROM lines l, ST_DumpSegments(l.line) AS d
), merged AS (
    SELECT seq_id, ST_LineMerge(ST_Collect(segment ORDER BY path)) AS geom
    FROM segments WHERE ST_Length(segment::geography) <= 75 GROUP BY seq_id
)
SELECT count(*) FILTER (WHERE ST_AsEWKB(CASE WHEN NOT ST_IsEmpty(m.geom) THEN ST_Multi(m.geom) END)
                              IS NOT DISTINCT FROM ST_AsEWKB(compute_sequence_geom(s.id))),
       count(*),
       count(*) FILTER (WHERE ST_NumGeometries(m.geom) > 1)
FROM sequences s LEFT JOIN merged m ON m.seq_id = s.id
