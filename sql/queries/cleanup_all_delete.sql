-- Whole-instance database cleanup: whole-table operations. Accounts and tokens stay.

-- name: keep_delete_jobs
-- Queued `delete` jobs (files of pictures already gone) are kept across the TRUNCATE, which must include
-- job_queue for its foreign keys.
CREATE TEMPORARY TABLE kept_delete_jobs ON COMMIT DROP AS
SELECT * FROM job_queue WHERE picture_to_delete_id IS NOT NULL;

-- name: truncate
TRUNCATE job_queue, sequences_pictures, sequences, pictures, upload_sets;

-- name: restore_delete_jobs
INSERT INTO job_queue SELECT * FROM kept_delete_jobs;
