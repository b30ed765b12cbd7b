-- Queue one `delete` job per picture of the temporary table cleanup_pictures, naming the kinds of file to
-- delete and the cleaned sequences it stands for (`sequence_ids`): its picture's, and, spread over the jobs,
-- those with no picture of their own to delete (empty, or holding only pictures of other cleaned
-- sequences), so that a re-run of an interrupted cleanup recognises every one of its ids. A job already
-- queued for a picture gets the union of both kinds (a job without `files`, as Panoramax queues them, means
-- every kind) and a fresh start. A whole-instance cleanup's pictures have no sequence left to name.

-- name: wanted
-- The job each picture gets: (id, args). Shared by the two forms below.
WITH unnamed AS (
    SELECT s.id, row_number() OVER (ORDER BY s.id) - 1 AS k
    FROM unnest(%(seq_ids)s::uuid[]) AS s (id)
    WHERE NOT EXISTS (SELECT 1 FROM cleanup_pictures c WHERE c.seq_id = s.id)
), numbered AS (
    SELECT c.id, c.seq_id, row_number() OVER (ORDER BY c.id) - 1 AS n, count(*) OVER () AS total
    FROM cleanup_pictures c
)
SELECT n.id, jsonb_build_object(
    'files', %(kinds)s::jsonb,
    'sequence_ids', to_jsonb(array_remove(array_prepend(n.seq_id,
        ARRAY(SELECT u.id FROM unnamed u WHERE u.k %% n.total = n.n)), NULL))
) AS args
FROM numbered n

-- name: merged
-- What a job already queued for the picture (q) becomes, given the wanted one (excluded): the union of both
-- kinds, and a fresh start. The SET list of both forms below.
args = excluded.args || jsonb_build_object('files', (
        SELECT jsonb_agg(DISTINCT k ORDER BY k)
        FROM jsonb_array_elements_text(
            coalesce(q.args -> 'files', '["derivates", "permanent", "tmp"]') || (excluded.args -> 'files')
        ) AS k
    )),
    nb_errors = 0,
    to_do_after_ts = NULL

-- name: enqueue
-- On job_queue's unique index on picture_to_delete_id (Panoramax 2.10 and later, ops).
INSERT INTO job_queue AS q (task, picture_to_delete_id, args)
SELECT 'delete', w.id, w.args FROM ({wanted}) AS w
ON CONFLICT (picture_to_delete_id) DO UPDATE SET {merged}

-- name: enqueue_unindexed
-- Without that index (Panoramax before 2.10): the jobs already queued for these pictures are updated as ON
-- CONFLICT would update them, then the others are inserted, in one statement.
WITH wanted AS ({wanted}), updated AS (
    UPDATE job_queue q SET {merged}
    FROM wanted AS excluded
    WHERE q.picture_to_delete_id = excluded.id
    RETURNING q.picture_to_delete_id
)
INSERT INTO job_queue (task, picture_to_delete_id, args)
SELECT 'delete', w.id, w.args FROM wanted w
WHERE NOT EXISTS (SELECT 1 FROM updated u WHERE u.picture_to_delete_id = w.id)
