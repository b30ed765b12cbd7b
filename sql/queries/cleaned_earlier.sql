-- Which of these ids (not sequences any more) a cleanup removed earlier, as its delete jobs record it: in
-- `args.sequence_ids` of the jobs still queued, or of those already done (job_history keeps the args).
-- `args.sequence_id` is how ops before 0.2 named one sequence per job.
SELECT ids.id FROM unnest(%(ids)s::uuid[]) AS ids (id)
WHERE EXISTS (
    SELECT 1 FROM job_queue q
    WHERE q.task = 'delete' AND (q.args -> 'sequence_ids' ? ids.id::text OR q.args ->> 'sequence_id' = ids.id::text)
) OR EXISTS (
    SELECT 1 FROM job_history h
    WHERE h.job_task = 'delete' AND (h.args -> 'sequence_ids' ? ids.id::text OR h.args ->> 'sequence_id' = ids.id::text)
);
