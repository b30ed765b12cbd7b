-- Baseline of `ops sequences reorder`: the least hand-written SQL producing the same ranks and geometries,
-- over every sequence in one transaction, no batching. It cannot be one statement: (seq_id, rank) is a
-- non-deferrable primary key, and reassigning ranks in one UPDATE (or DELETE + INSERT in one statement)
-- collides with the old ranks. So: new ranks negated, then flipped, then the derived fields.
CREATE TEMPORARY TABLE moved (seq_id uuid) ON COMMIT DROP;

WITH ordered AS (
    SELECT sp.seq_id, sp.rank AS old_rank,
           row_number() OVER (PARTITION BY sp.seq_id ORDER BY p.ts, p.metadata ->> 'originalFileName', p.id) AS new_rank
    FROM sequences_pictures sp
    JOIN pictures p ON p.id = sp.pic_id
    JOIN sequences s ON s.id = sp.seq_id
    WHERE s.status <> 'deleted'
), upd AS (
    UPDATE sequences_pictures sp SET rank = -o.new_rank
    FROM ordered o
    WHERE sp.seq_id = o.seq_id AND sp.rank = o.old_rank AND o.old_rank <> o.new_rank
    RETURNING sp.seq_id
)
INSERT INTO moved SELECT DISTINCT seq_id FROM upd;

UPDATE sequences_pictures SET rank = -rank WHERE rank < 0;

UPDATE sequences s
SET geom = compute_sequence_geom(s.id), bbox = compute_sequence_bbox(s.id),
    min_picture_ts = d.min_ts, max_picture_ts = d.max_ts, nb_pictures = d.nb, updated_at = now()
FROM (
    SELECT sp.seq_id, min(p.ts) AS min_ts, max(p.ts) AS max_ts, count(*) AS nb
    FROM sequences_pictures sp JOIN pictures p ON p.id = sp.pic_id
    WHERE sp.seq_id IN (SELECT seq_id FROM moved)
    GROUP BY sp.seq_id
) d
WHERE s.id = d.seq_id
