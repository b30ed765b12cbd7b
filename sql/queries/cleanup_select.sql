-- The pictures a per-sequence cleanup removes: those of the given sequences that belong to no other
-- sequence. A picture shared with a sequence not being cleaned is kept, row and files (`<> ALL`, not
-- Panoramax's `!= ANY`, which is true for every row as soon as two ids are given).
-- seq_id: one of the cleaned sequences holding the picture, named in its delete job so that a re-run of an
-- interrupted cleanup recognises its sequences.
-- name: select_pictures
CREATE TEMPORARY TABLE cleanup_pictures ON COMMIT DROP AS
SELECT sp.pic_id AS id, (array_agg(sp.seq_id ORDER BY sp.seq_id))[1] AS seq_id
FROM sequences_pictures sp
WHERE sp.seq_id = ANY(%(seq_ids)s::uuid[])
  AND NOT EXISTS (
      SELECT 1 FROM sequences_pictures other
      WHERE other.pic_id = sp.pic_id AND other.seq_id <> ALL(%(seq_ids)s::uuid[])
  )
GROUP BY sp.pic_id;

-- name: primary_key
ALTER TABLE cleanup_pictures ADD PRIMARY KEY (id);
