-- name: history
-- Record a processed batch in job_history (one row per job, with its error or warning).
INSERT INTO job_history (job_id, picture_to_delete_id, job_task, args, started_at, finished_at, error, warning)
SELECT j.id, j.picture_id, 'delete', j.args, %(started_at)s, clock_timestamp(), j.error, j.warning
FROM unnest(%(job_ids)s::uuid[], %(picture_ids)s::uuid[], %(args)s::jsonb[], %(errors)s::text[], %(warnings)s::text[])
    AS j (id, picture_id, args, error, warning);

-- name: history_without_warning
-- The same on a job_history without its warning column (Panoramax before 2.9).
INSERT INTO job_history (job_id, picture_to_delete_id, job_task, args, started_at, finished_at, error)
SELECT j.id, j.picture_id, 'delete', j.args, %(started_at)s, clock_timestamp(), j.error
FROM unnest(%(job_ids)s::uuid[], %(picture_ids)s::uuid[], %(args)s::jsonb[], %(errors)s::text[], %(warnings)s::text[])
    AS j (id, picture_id, args, error, warning);

-- name: remove
-- Finished jobs, and failed ones out of retries, leave the queue.
DELETE FROM job_queue WHERE id = ANY(%(remove_ids)s::uuid[]);

-- name: retry
-- Failed jobs with retries left: counted, and retried later with an exponential backoff (10 s, 20 s, … 1 h)
-- from the end of this attempt (clock_timestamp: an attempt slowed by storage retries does not eat the wait).
UPDATE job_queue
SET nb_errors = nb_errors + 1,
    to_do_after_ts = clock_timestamp() + least(interval '1 hour', interval '10 seconds' * power(2, nb_errors))
WHERE id = ANY(%(retry_ids)s::uuid[]);
