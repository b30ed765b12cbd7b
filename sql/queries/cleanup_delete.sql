-- Per-sequence database cleanup, after cleanup_select (and the delete jobs, when files go too).
-- Rules per table on a database built by Panoramax (ops's own has the first ones only): a deleted picture
-- takes along what Panoramax's API removes with it (by its foreign keys' cascades: sequences_pictures,
-- pictures_changes, annotations, reports, semantics, its jobs and job history); `files` rows stay (they
-- belong to the upload set: their picture_id becomes NULL). A deleted sequence takes its
-- sequences_changes, reports, semantics and jobs (cascades); see sequence_links.sql for the links that
-- would block it. Accounts, tokens and excluded areas are never touched.

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
-- A database built by Panoramax has a trigger queuing a `delete` job of all the files of every deleted
-- picture (ask_for_all_file_deletion_after_delete). ops queues its own jobs first (the trigger's insert
-- then does nothing) or deletes the files itself: the jobs the trigger created in this transaction
-- (no `files` in args) go, so that a Panoramax worker never deletes files ops meant to keep.
DELETE FROM job_queue
WHERE task = 'delete' AND ts = now() AND NOT coalesce(args ? 'files', false)
  AND picture_to_delete_id IN (SELECT id FROM cleanup_pictures);

-- name: empty_upload_sets
-- Emptied upload sets go (their `files` rows follow by cascade).
DELETE FROM upload_sets u
WHERE u.id IN (SELECT id FROM cleanup_upload_sets)
  AND NOT EXISTS (SELECT 1 FROM pictures p WHERE p.upload_set_id = u.id);
