-- The order of a sequence's pictures: ranks 1..n by (ts, originalFileName, id), ties broken by the id (no
-- primary-key clash, one answer). A dry run reads `preview`; a real run writes with `ranks` then `flip`.

-- name: ordered
SELECT sp.seq_id, sp.rank AS old_rank,
       row_number() OVER (
           PARTITION BY sp.seq_id
           ORDER BY p.ts, p.metadata ->> 'originalFileName', p.id
       ) AS new_rank
FROM sequences_pictures sp
JOIN pictures p ON p.id = sp.pic_id
WHERE sp.seq_id = ANY(%(seq_ids)s::uuid[])

-- name: preview
-- The sequences whose order would change, with the number of pictures that would move.
WITH ordered AS ({ordered})
SELECT seq_id, count(*) FROM ordered WHERE old_rank <> new_rank GROUP BY seq_id ORDER BY seq_id

-- name: ranks
-- Step 1: every picture whose rank changes gets its new rank, negated (so no (seq_id, rank) primary-key
-- collision can happen while ranks move). Returns each changed sequence with the number of pictures moved.
WITH ordered AS ({ordered}), moved AS (
    UPDATE sequences_pictures sp
    SET rank = -o.new_rank
    FROM ordered o
    WHERE sp.seq_id = o.seq_id AND sp.rank = o.old_rank AND o.old_rank <> o.new_rank
    RETURNING sp.seq_id
)
SELECT seq_id, count(*) FROM moved GROUP BY seq_id ORDER BY seq_id

-- name: flip
-- Step 2: the moved ranks become positive.
UPDATE sequences_pictures SET rank = -rank WHERE seq_id = ANY(%(changed)s::uuid[]) AND rank < 0
