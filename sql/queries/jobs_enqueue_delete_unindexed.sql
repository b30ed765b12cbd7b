-- jobs_enqueue_delete on a job_queue without its unique index on picture_to_delete_id (Panoramax before
-- 2.10): the jobs already queued for these pictures are updated as ON CONFLICT would update them, then the
-- others are inserted, in one statement.
WITH unnamed AS (
    SELECT s.id, row_number() OVER (ORDER BY s.id) - 1 AS k
    FROM unnest(%(seq_ids)s::uuid[]) AS s (id)
    WHERE NOT EXISTS (SELECT 1 FROM cleanup_pictures c WHERE c.seq_id = s.id)
), numbered AS (
    SELECT c.id, c.seq_id, row_number() OVER (ORDER BY c.id) - 1 AS n, count(*) OVER () AS total
    FROM cleanup_pictures c
), wanted AS (
    SELECT n.id, jsonb_build_object(
        'files', %(kinds)s::jsonb,
        'sequence_ids', to_jsonb(array_remove(array_prepend(n.seq_id,
            ARRAY(SELECT u.id FROM unnamed u WHERE u.k %% n.total = n.n)), NULL))
    ) AS args
    FROM numbered n
), updated AS (
    UPDATE job_queue q
    SET args = w.args || jsonb_build_object('files', (
            SELECT jsonb_agg(DISTINCT k ORDER BY k)
            FROM jsonb_array_elements_text(
                coalesce(q.args -> 'files', '["derivates", "permanent", "tmp"]') || (w.args -> 'files')
            ) AS k
        )),
        nb_errors = 0,
        to_do_after_ts = NULL
    FROM wanted w
    WHERE q.picture_to_delete_id = w.id
    RETURNING q.picture_to_delete_id
)
INSERT INTO job_queue (task, picture_to_delete_id, args)
SELECT 'delete', w.id, w.args FROM wanted w
WHERE NOT EXISTS (SELECT 1 FROM updated u WHERE u.picture_to_delete_id = w.id);
