-- Per-sequence database cleanup, after cleanup_select (and the delete jobs, when files go too).

-- name: upload_sets_of_pictures
-- Upload sets that held the removed pictures, to drop once empty.
CREATE TEMPORARY TABLE cleanup_upload_sets ON COMMIT DROP AS
SELECT DISTINCT p.upload_set_id AS id
FROM pictures p JOIN cleanup_pictures c ON c.id = p.id
WHERE p.upload_set_id IS NOT NULL;

-- name: sequences
-- Sequences go first: their sequences_pictures rows and queued jobs follow by cascade.
DELETE FROM sequences WHERE id = ANY(%(seq_ids)s::uuid[]);

-- name: pictures
-- Then the pictures no other sequence holds (their queued jobs follow by cascade).
DELETE FROM pictures WHERE id IN (SELECT id FROM cleanup_pictures);

-- name: trigger_jobs
-- A database built by Panoramax has a trigger queuing a `delete` job per deleted picture: in a
-- database-only cleanup those jobs would erase the files, so the ones this transaction created go.
DELETE FROM job_queue
WHERE %(database_only)s AND task = 'delete' AND ts = now()
  AND picture_to_delete_id IN (SELECT id FROM cleanup_pictures);

-- name: empty_upload_sets
DELETE FROM upload_sets u
WHERE u.id IN (SELECT id FROM cleanup_upload_sets)
  AND NOT EXISTS (SELECT 1 FROM pictures p WHERE p.upload_set_id = u.id);
