-- The fields a sequence derives from its pictures: geom and bbox by compute_sequence_geom and
-- compute_sequence_bbox (Panoramax's own functions on its databases, ops's with the same rule on ops's: the
-- line in rank order, split where pictures are more than 75 m apart), first/last capture time and number
-- of pictures. Deleted sequences (tombstones) keep theirs.

-- name: stale
-- The sequences (of %(seq_ids)s, not deleted) whose stored fields differ from what their pictures give (NULL
-- where they are missing), with the right values. Geometries compare by their bytes (EWKB), boxes by text.
SELECT c.id, c.geom, c.bbox, c.min_ts, c.max_ts, c.nb
FROM (
    SELECT s.id, s.geom AS old_geom, s.bbox AS old_bbox, s.min_picture_ts, s.max_picture_ts, s.nb_pictures,
           compute_sequence_geom(s.id) AS geom, compute_sequence_bbox(s.id) AS bbox,
           d.min_ts, d.max_ts, d.nb
    FROM sequences s
    CROSS JOIN LATERAL (
        SELECT min(p.ts) AS min_ts, max(p.ts) AS max_ts, count(p.id) AS nb
        FROM sequences_pictures sp JOIN pictures p ON p.id = sp.pic_id
        WHERE sp.seq_id = s.id
    ) d
    WHERE s.id = ANY(%(seq_ids)s::uuid[]) AND s.status <> 'deleted'
) c
WHERE ST_AsEWKB(c.old_geom) IS DISTINCT FROM ST_AsEWKB(c.geom)
   OR c.old_bbox::text IS DISTINCT FROM c.bbox::text
   OR c.min_picture_ts IS DISTINCT FROM c.min_ts
   OR c.max_picture_ts IS DISTINCT FROM c.max_ts
   OR c.nb_pictures IS DISTINCT FROM c.nb
ORDER BY c.id

-- name: preview
WITH stale AS ({stale}) SELECT id FROM stale ORDER BY id

-- name: apply
-- Writes the right values where they differ; returns the sequences written.
WITH stale AS ({stale})
UPDATE sequences s
SET geom = c.geom, bbox = c.bbox, min_picture_ts = c.min_ts, max_picture_ts = c.max_ts, nb_pictures = c.nb,
    updated_at = now()
FROM stale c
WHERE s.id = c.id
RETURNING s.id
