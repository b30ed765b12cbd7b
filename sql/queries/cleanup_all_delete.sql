-- Whole-instance database cleanup, in batches (never TRUNCATE: it would cascade into the history tables of
-- a Panoramax database and hold an exclusive lock on every table at once). Accounts and tokens stay; delete
-- jobs already queued (files of pictures gone earlier) stay.

-- name: sequence_batch
SELECT id FROM sequences ORDER BY id LIMIT %(batch_size)s;

-- name: sequences
DELETE FROM sequences WHERE id = ANY(%(seq_ids)s::uuid[]);

-- name: pictures
-- A batch of pictures; their files go by the areas' wipe (or stay, with --database).
WITH batch AS (SELECT id FROM pictures ORDER BY id LIMIT %(batch_size)s)
DELETE FROM pictures p USING batch b WHERE p.id = b.id
RETURNING p.id;

-- name: trigger_jobs
-- The `delete` jobs Panoramax's trigger queued for this batch: the files go with the wipe, or stay.
DELETE FROM job_queue
WHERE task = 'delete' AND ts = now() AND NOT coalesce(args ? 'files', false)
  AND picture_to_delete_id = ANY(%(pic_ids)s::uuid[]);

-- name: upload_sets
WITH batch AS (SELECT id FROM upload_sets ORDER BY id LIMIT %(batch_size)s)
DELETE FROM upload_sets u USING batch b WHERE u.id = b.id;
