-- Claim a batch of due `delete` jobs. FOR UPDATE SKIP LOCKED: concurrent workers, on any machine, never take
-- the same job; the row locks last until the batch's transaction ends. `picture_exists` flags a job whose
-- picture is in the database again: its files must be kept. `exclude`: jobs the caller already attempted
-- (a failed job is retried by a later drain, after its backoff). `sequences` (NULL: any job): only the jobs
-- a cleanup of these sequences queued (their args name them), for a cleanup that deletes its own files only.
SELECT q.id, q.picture_to_delete_id, q.args, q.nb_errors,
       EXISTS (SELECT 1 FROM pictures p WHERE p.id = q.picture_to_delete_id) AS picture_exists
FROM job_queue q
WHERE q.task = 'delete'
  AND q.picture_to_delete_id IS NOT NULL
  AND (q.to_do_after_ts IS NULL OR q.to_do_after_ts <= now())
  AND q.id <> ALL(%(exclude)s::uuid[])
  AND (%(sequences)s::text[] IS NULL OR q.args -> 'sequence_ids' ?| %(sequences)s::text[])
ORDER BY q.nb_errors, q.ts
LIMIT %(batch_size)s
FOR UPDATE OF q SKIP LOCKED;
