-- The fields a sequence derives from its pictures: geom and bbox by compute_sequence_geom and
-- compute_sequence_bbox (Panoramax's own functions on its databases, ops's with the same rule on ops's: the
-- line in rank order, split where pictures are more than 75 m apart), first/last capture time and number of
-- pictures. Deleted sequences (tombstones) keep theirs.
--
-- Where the database's two functions are ones ops knows (%(set_based)s: capabilities.sequence_rule_known, ops's
-- own and Panoramax's since 2.8), their rule is computed set-based for every candidate at once, as the
-- reorder baseline does (measured at 1M pictures: 1.0 s instead of 2.3 s through a call per sequence; bench.suite
-- checks ops's output byte-identical to the functions); any other body is called once per sequence.
--
-- Which sequences get their geometry computed: the named ones
-- when %(full)s (ops sequences reorder ID…, and ops doctor's fix), else those just reordered and those whose
-- cheap fields show them stale: geometry or bbox missing, picture count or capture times that differ from
-- their pictures. A geometry present but different under the same order (a picture moved by hand) is found
-- by ops doctor, whose fix names the sequences. Only what differs is written.

-- name: facts
-- First/last capture time and number of pictures of the sequences of %(seq_ids)s that have pictures (a reorder
-- reads them in the pass that ranks; other callers here).
SELECT sp.seq_id, min(p.ts), max(p.ts), count(*)
FROM sequences_pictures sp JOIN pictures p ON p.id = sp.pic_id
WHERE sp.seq_id = ANY(%(seq_ids)s::uuid[])
GROUP BY sp.seq_id

-- name: stale
-- The sequences (of %(seq_ids)s, not deleted) whose stored fields differ from what their pictures give, with
-- the right values; the facts of those with pictures come as arrays (fact_ids, fact_min, fact_max, fact_nb),
-- and pick the candidates; a candidate's facts are read again unless they come from this transaction
-- (%(fresh)s: a reorder's survey is read before its writing transactions, and a picture may come meanwhile).
-- Geometries compare by their bytes (EWKB), boxes by text.
WITH facts AS (
    SELECT * FROM unnest(%(fact_ids)s::uuid[], %(fact_min)s::timestamptz[], %(fact_max)s::timestamptz[],
                         %(fact_nb)s::bigint[]) AS f (id, min_ts, max_ts, nb)
), pics AS (
    SELECT s.id, s.geom, s.bbox, s.min_picture_ts, s.max_picture_ts, s.nb_pictures, f.min_ts, f.max_ts,
           coalesce(f.nb, 0) AS nb
    FROM sequences s LEFT JOIN facts f ON f.id = s.id
    WHERE s.id = ANY(%(seq_ids)s::uuid[]) AND s.status <> 'deleted'
), candidates AS (
    SELECT * FROM pics
    WHERE %(full)s OR id = ANY(%(reordered)s::uuid[])
       OR (geom IS NULL AND nb > 1) OR (bbox IS NULL AND nb > 0)
       OR min_picture_ts IS DISTINCT FROM min_ts OR max_picture_ts IS DISTINCT FROM max_ts
       OR nb_pictures IS DISTINCT FROM nb
), fresh AS (  -- the facts of a candidate, read again unless they were read in this transaction (%(fresh)s)
    SELECT c.id, c.geom, c.bbox, c.min_picture_ts, c.max_picture_ts, c.nb_pictures,
           CASE WHEN c.id = ANY(%(fresh)s::uuid[]) THEN c.min_ts ELSE r.min_ts END AS min_ts,
           CASE WHEN c.id = ANY(%(fresh)s::uuid[]) THEN c.max_ts ELSE r.max_ts END AS max_ts,
           CASE WHEN c.id = ANY(%(fresh)s::uuid[]) THEN c.nb ELSE r.nb END AS nb
    FROM candidates c
    LEFT JOIN LATERAL (
        SELECT min(p.ts) AS min_ts, max(p.ts) AS max_ts, count(*) AS nb
        FROM sequences_pictures sp JOIN pictures p ON p.id = sp.pic_id
        WHERE sp.seq_id = c.id AND NOT c.id = ANY(%(fresh)s::uuid[])
    ) r ON true
), computed AS (
    SELECT c.*,
           CASE WHEN %(set_based)s THEN CASE WHEN NOT ST_IsEmpty(m.geom) THEN ST_Multi(m.geom) END
                ELSE compute_sequence_geom(c.id) END AS new_geom,
           CASE WHEN %(set_based)s THEN l.bbox ELSE compute_sequence_bbox(c.id) END AS new_bbox
    FROM fresh c
    LEFT JOIN LATERAL (  -- %(set_based)s: the functions' rule, one read of the pictures for both (see the header)
        SELECT ST_MakeLine(p.geom ORDER BY sp.rank) AS line, ST_Extent(p.geom) AS bbox
        FROM sequences_pictures sp JOIN pictures p ON p.id = sp.pic_id
        WHERE sp.seq_id = c.id
    ) l ON %(set_based)s
    LEFT JOIN LATERAL (  -- its segments of 75 m or less, in order, merged
        SELECT ST_LineMerge(ST_Collect(d.geom ORDER BY d.path)) AS geom
        FROM ST_DumpSegments(l.line) AS d
        WHERE ST_Length(d.geom::geography) <= 75
    ) m ON %(set_based)s
)
SELECT id, new_geom AS geom, new_bbox AS bbox, min_ts, max_ts, nb
FROM computed
WHERE ST_AsEWKB(geom) IS DISTINCT FROM ST_AsEWKB(new_geom) OR bbox::text IS DISTINCT FROM new_bbox::text
   OR min_picture_ts IS DISTINCT FROM min_ts OR max_picture_ts IS DISTINCT FROM max_ts
   OR nb_pictures IS DISTINCT FROM nb
ORDER BY id

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
