-- Queue one `delete` job per picture of the temporary table cleanup_pictures, naming the kinds of file to
-- delete and the sequence it was cleaned with. A job already queued for a picture gets the union of both
-- kinds (a job without `files`, as Panoramax queues them, means every kind) and a fresh start.
INSERT INTO job_queue (task, picture_to_delete_id, args)
SELECT 'delete', c.id, jsonb_build_object('files', %(kinds)s::jsonb, 'sequence_id', c.seq_id)
FROM cleanup_pictures c
ON CONFLICT (picture_to_delete_id) DO UPDATE
SET args = EXCLUDED.args || jsonb_build_object('files', (
        SELECT jsonb_agg(DISTINCT k ORDER BY k)
        FROM jsonb_array_elements_text(
            coalesce(job_queue.args -> 'files', '["derivates", "permanent", "tmp"]') || (EXCLUDED.args -> 'files')
        ) AS k
    )),
    nb_errors = 0,
    to_do_after_ts = NULL;
