-- The order of a sequence's pictures: ranks 1..n by (ts, originalFileName, id), ties broken by the id (no
-- primary-key clash, one answer). A dry run reads `preview`; a real run writes with `ranks` then `flip`.
-- Both return, per sequence of the batch that has pictures, its facts (first/last capture time, number of
-- pictures: read in the same pass, for sequence_derived) and how many pictures move.

-- name: ordered
SELECT sp.seq_id, sp.rank AS old_rank, p.ts,
       row_number() OVER (
           PARTITION BY sp.seq_id
           ORDER BY p.ts, p.metadata ->> 'originalFileName', p.id
       ) AS new_rank
FROM sequences_pictures sp
JOIN pictures p ON p.id = sp.pic_id
WHERE sp.seq_id = ANY(%(seq_ids)s::uuid[])

-- name: preview
WITH ordered AS ({ordered})
SELECT seq_id, min(ts), max(ts), count(*), count(*) FILTER (WHERE old_rank <> new_rank)
FROM ordered GROUP BY seq_id ORDER BY seq_id

-- name: ranks
-- Step 1: every picture whose rank changes gets its new rank, negated (so no (seq_id, rank) primary-key
-- collision can happen while ranks move).
WITH ordered AS ({ordered}), moved AS (
    UPDATE sequences_pictures sp
    SET rank = -o.new_rank
    FROM ordered o
    WHERE sp.seq_id = o.seq_id AND sp.rank = o.old_rank AND o.old_rank <> o.new_rank
    RETURNING sp.seq_id
), moved_per_sequence AS (
    SELECT seq_id, count(*) AS n FROM moved GROUP BY seq_id
)
SELECT o.seq_id, min(o.ts), max(o.ts), count(*), coalesce(max(m.n), 0)
FROM ordered o LEFT JOIN moved_per_sequence m ON m.seq_id = o.seq_id
GROUP BY o.seq_id ORDER BY o.seq_id

-- name: flip
-- Step 2: the moved ranks become positive.
UPDATE sequences_pictures SET rank = -rank WHERE seq_id = ANY(%(changed)s::uuid[]) AND rank < 0
