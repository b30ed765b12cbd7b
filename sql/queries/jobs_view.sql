-- What `ops jobs` shows of the queue and its history, on both kinds of database. Read-only, and never
-- blocking a worker: a job being processed is one whose row a live transaction holds (its xmax is the xid
-- of a running backend), found without taking any lock.

-- name: summary
WITH running AS (
    SELECT backend_xid FROM pg_stat_activity WHERE backend_xid IS NOT NULL
), queue AS (
    SELECT q.task::text AS task, q.ts, q.to_do_after_ts,
           q.xmax IN (SELECT backend_xid FROM running) AS processing,
           coalesce(q.to_do_after_ts > now(), false) AS waiting
    FROM job_queue q
)
SELECT task,
       count(*) FILTER (WHERE NOT processing AND NOT waiting) AS queued,
       count(*) FILTER (WHERE NOT processing AND waiting) AS waiting_retry,
       min(to_do_after_ts) FILTER (WHERE NOT processing AND waiting) AS next_retry_at,
       count(*) FILTER (WHERE processing) AS processing,
       extract(epoch FROM now() - min(ts) FILTER (WHERE NOT processing AND NOT waiting))::float AS oldest_ready_age_s
FROM queue
GROUP BY task
ORDER BY task;

-- name: failures
-- Failed jobs: the last attempt of a job that left the queue ended with an error (given up).
WITH last AS (
    SELECT DISTINCT ON (h.job_id) h.job_id, h.job_task, h.error, h.finished_at
    FROM job_history h
    WHERE h.job_id IS NOT NULL AND h.started_at >= %(since)s
    ORDER BY h.job_id, h.started_at DESC
)
SELECT job_task::text, count(*)
FROM last
WHERE error IS NOT NULL AND NOT EXISTS (SELECT 1 FROM job_queue q WHERE q.id = last.job_id)
GROUP BY job_task
ORDER BY job_task;

-- name: list_queued
-- Queued jobs, oldest first; `total`: how many match before the limit (NULL: no limit).
SELECT q.id, q.task::text,
       CASE WHEN q.picture_id IS NOT NULL THEN 'picture' WHEN q.sequence_id IS NOT NULL THEN 'sequence'
            WHEN q.upload_set_id IS NOT NULL THEN 'upload set' ELSE 'picture to delete' END AS target_kind,
       coalesce(q.picture_id, q.sequence_id, q.upload_set_id, q.picture_to_delete_id) AS target,
       q.nb_errors AS attempts_failed,
       (SELECT h.error FROM job_history h WHERE h.job_id = q.id AND h.error IS NOT NULL
        ORDER BY h.started_at DESC LIMIT 1) AS last_error,
       coalesce(q.to_do_after_ts, q.ts) AS at,
       count(*) OVER () AS total
FROM job_queue q
WHERE (%(task)s::text IS NULL OR q.task::text = %(task)s) AND q.ts >= %(since)s
ORDER BY q.ts, q.id
LIMIT %(limit)s;

-- name: list_failed
WITH last AS (
    SELECT DISTINCT ON (h.job_id) h.*
    FROM job_history h
    WHERE h.job_id IS NOT NULL AND (%(task)s::text IS NULL OR h.job_task::text = %(task)s)
    ORDER BY h.job_id, h.started_at DESC
)
SELECT l.job_id, l.job_task::text,
       CASE WHEN l.picture_id IS NOT NULL THEN 'picture' WHEN l.sequence_id IS NOT NULL THEN 'sequence'
            WHEN l.upload_set_id IS NOT NULL THEN 'upload set' ELSE 'picture to delete' END,
       coalesce(l.picture_id, l.sequence_id, l.upload_set_id, l.picture_to_delete_id),
       (SELECT count(*) FROM job_history h WHERE h.job_id = l.job_id AND h.error IS NOT NULL)::int,
       l.error, coalesce(l.finished_at, l.started_at),
       count(*) OVER () AS total
FROM last l
WHERE l.error IS NOT NULL AND coalesce(l.finished_at, l.started_at) >= %(since)s
  AND NOT EXISTS (SELECT 1 FROM job_queue q WHERE q.id = l.job_id)
ORDER BY coalesce(l.finished_at, l.started_at) DESC, l.job_id
LIMIT %(limit)s;

-- name: retry_candidates
-- The failed jobs chosen (by id, or every job of a task and period whose last attempt failed), with why one
-- would not be queued again: a `delete` job whose picture is in the database again, a target that is gone,
-- a job of the same target queued already. Read alone by a dry run; run for real inside requeue_judged.
WITH last AS (
    SELECT DISTINCT ON (h.job_id) h.*
    FROM job_history h
    WHERE h.job_id IS NOT NULL
      AND (h.job_id = ANY(%(ids)s::uuid[])
           OR (%(all_failed)s AND (%(task)s::text IS NULL OR h.job_task::text = %(task)s)
               AND coalesce(h.finished_at, h.started_at) >= %(since)s))
    ORDER BY h.job_id, h.started_at DESC
)
SELECT l.job_id, l.job_task, l.picture_id, l.upload_set_id, l.sequence_id, l.picture_to_delete_id, l.args,
       CASE
           WHEN EXISTS (SELECT 1 FROM job_queue q WHERE q.id = l.job_id) THEN 'it is queued already'
           WHEN l.error IS NULL THEN 'its last attempt succeeded'
           WHEN l.picture_to_delete_id IS NOT NULL
                AND EXISTS (SELECT 1 FROM pictures p WHERE p.id = l.picture_to_delete_id)
               THEN 'its picture is in the database again: its files stay'
           WHEN l.picture_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pictures p WHERE p.id = l.picture_id)
               THEN 'its picture is gone'
           WHEN l.sequence_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sequences s WHERE s.id = l.sequence_id)
               THEN 'its sequence is gone'
           WHEN l.upload_set_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM upload_sets u WHERE u.id = l.upload_set_id)
               THEN 'its upload set is gone'
           WHEN EXISTS (SELECT 1 FROM job_queue q WHERE q.picture_id = l.picture_id OR q.sequence_id = l.sequence_id
                        OR q.upload_set_id = l.upload_set_id OR q.picture_to_delete_id = l.picture_to_delete_id)
               THEN 'another job of its target is queued'
       END AS skip_reason
FROM last l
WHERE l.job_id = ANY(%(ids)s::uuid[]) OR l.error IS NOT NULL
ORDER BY l.job_id;

-- name: requeue_judged
-- The jobs judged by retry_candidates (inlined below, by name) that still need a retry go back in the queue under
-- their own id (their history goes on), in the statement that judged them: a retry or a worker that finished
-- one of them meanwhile is seen (one snapshot, taken once the queue's lock is granted), so a job that has
-- since succeeded is never run again. The queue's unique constraints keep one job per target.
WITH judged AS (
    {judged}
), queued AS (
    INSERT INTO job_queue (id, task, picture_id, upload_set_id, sequence_id, picture_to_delete_id, args)
    SELECT j.job_id, j.job_task, j.picture_id, j.upload_set_id, j.sequence_id, j.picture_to_delete_id, j.args
    FROM judged j
    WHERE j.skip_reason IS NULL
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT j.job_id, j.skip_reason, q.id IS NOT NULL
FROM judged j LEFT JOIN queued q ON q.id = j.job_id
ORDER BY j.job_id;

-- name: prunable
SELECT count(*) FROM job_history h
WHERE h.finished_at < %(before)s AND (%(include_failures)s OR h.error IS NULL)
  AND NOT EXISTS (SELECT 1 FROM job_queue q WHERE q.id = h.job_id);

-- name: prune_batch
WITH batch AS (
    SELECT h.id FROM job_history h
    WHERE h.finished_at < %(before)s AND (%(include_failures)s OR h.error IS NULL)
      AND NOT EXISTS (SELECT 1 FROM job_queue q WHERE q.id = h.job_id)
    LIMIT %(batch_size)s
)
DELETE FROM job_history h USING batch b WHERE h.id = b.id;
