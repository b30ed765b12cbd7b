-- The ranking rule of the reorder baseline on ops's own database (reorder_baseline.sql's `ordered`): by
-- capture time, then original file name, then id, as ops ranks when no user chose an order.
SELECT sp.seq_id, sp.rank AS old_rank,
       row_number() OVER (PARTITION BY sp.seq_id ORDER BY p.ts, p.metadata ->> 'originalFileName', p.id) AS new_rank
FROM sequences_pictures sp
JOIN pictures p ON p.id = sp.pic_id
JOIN sequences s ON s.id = sp.seq_id
WHERE s.status <> 'deleted'
