-- Recompute the fields a sequence derives from its pictures: geom and bbox by compute_sequence_geom and
-- compute_sequence_bbox (Panoramax's functions on its databases, ops's own with the same rule on ops's:
-- the line in rank order, split where pictures are more than 75 m apart), first/last capture time and
-- number of pictures.
UPDATE sequences s
SET geom = compute_sequence_geom(s.id),
    bbox = compute_sequence_bbox(s.id),
    min_picture_ts = d.min_ts,
    max_picture_ts = d.max_ts,
    nb_pictures = d.nb,
    updated_at = now()
FROM (
    SELECT ids.id AS seq_id, min(p.ts) AS min_ts, max(p.ts) AS max_ts, count(p.id) AS nb
    FROM unnest(%(seq_ids)s::uuid[]) AS ids (id)
    LEFT JOIN sequences_pictures sp ON sp.seq_id = ids.id
    LEFT JOIN pictures p ON p.id = sp.pic_id
    GROUP BY ids.id
) d
WHERE s.id = d.seq_id;
