-- Which sequences a sequence command works on: the ids given (checked, deleted ones set apart), or every
-- sequence not deleted, a page at a time.

-- name: unknown
-- The ids that are no sequence.
SELECT ids.id FROM unnest(%(ids)s::uuid[]) AS ids (id)
WHERE NOT EXISTS (SELECT 1 FROM sequences s WHERE s.id = ids.id)
ORDER BY 1

-- name: deleted
-- The ids that are deleted sequences (tombstones: left as they are).
SELECT id FROM sequences WHERE id = ANY(%(ids)s::uuid[]) AND status = 'deleted' ORDER BY id

-- name: count_all
SELECT count(*) FROM sequences WHERE status <> 'deleted'

-- name: page
SELECT id FROM sequences WHERE status <> 'deleted' AND id > %(after)s ORDER BY id LIMIT %(n)s

-- name: sample
-- A few sequences with a line to compute (two pictures or more): to time the geometry function.
SELECT s.id FROM sequences s
WHERE s.status <> 'deleted' AND (SELECT count(*) FROM sequences_pictures sp WHERE sp.seq_id = s.id) > 1
ORDER BY s.id
LIMIT %(n)s
