-- Recompute the fields a sequence derives from its pictures: geom (a MultiLineString through the pictures
-- in rank order, repeated points removed; NULL under 2 distinct positions: zero length), bbox, min/max capture time, number of pictures.
UPDATE sequences s
SET geom = CASE WHEN ST_Length(d.line) > 0 THEN ST_Multi(d.line) END,
    bbox = d.bbox,
    min_picture_ts = d.min_ts,
    max_picture_ts = d.max_ts,
    nb_pictures = d.nb,
    updated_at = now()
FROM (
    SELECT ids.id AS seq_id,
           ST_RemoveRepeatedPoints(ST_MakeLine(p.geom ORDER BY sp.rank)) AS line,
           ST_Extent(p.geom)::box2d AS bbox,
           min(p.ts) AS min_ts,
           max(p.ts) AS max_ts,
           count(p.id) AS nb
    FROM unnest(%(seq_ids)s::uuid[]) AS ids (id)
    LEFT JOIN sequences_pictures sp ON sp.seq_id = ids.id
    LEFT JOIN pictures p ON p.id = sp.pic_id
    GROUP BY ids.id
) d
WHERE s.id = d.seq_id;
