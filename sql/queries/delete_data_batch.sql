-- One batch of `ops user --delete-data`, in one transaction: lock up to %(batch_size)s pictures of the
-- account (keyset paging by id on the index (account_id, id): a batch never rescans the rows earlier
-- batches deleted), then (their grid cells expired, on a Panoramax database) delete them and queue one
-- `delete` job per picture for their files in one statement.

-- name: mark_sequences
-- First, the account's sequences become tombstones (for the federated catalogue; their geometry stays).
UPDATE sequences SET status = 'deleted', updated_at = now()
WHERE account_id = %(account_id)s AND status <> 'deleted';

-- name: batch
SELECT id FROM pictures
WHERE account_id = %(account_id)s AND id > %(after)s
ORDER BY id
LIMIT %(batch_size)s
FOR UPDATE;

-- name: delete
WITH queued AS (
    INSERT INTO job_queue (task, picture_to_delete_id, args)
    SELECT 'delete', b.id, '{"files": ["derivates", "permanent", "tmp"]}'::jsonb
    FROM unnest(%(pic_ids)s::uuid[]) AS b (id)
    ON CONFLICT (picture_to_delete_id) DO UPDATE
    SET args = EXCLUDED.args, nb_errors = 0, to_do_after_ts = NULL
    RETURNING 1
), deleted AS (
    DELETE FROM pictures p WHERE p.id = ANY(%(pic_ids)s::uuid[])
    RETURNING 1
)
SELECT (SELECT count(*) FROM deleted), (SELECT count(*) FROM queued);

-- name: delete_unindexed
-- The same on a job_queue without its unique index on picture_to_delete_id (Panoramax before 2.10): the
-- queued jobs of these pictures updated, the others inserted.
WITH updated AS (
    UPDATE job_queue SET args = '{"files": ["derivates", "permanent", "tmp"]}'::jsonb, nb_errors = 0,
        to_do_after_ts = NULL
    WHERE picture_to_delete_id = ANY(%(pic_ids)s::uuid[])
    RETURNING picture_to_delete_id
), queued AS (
    INSERT INTO job_queue (task, picture_to_delete_id, args)
    SELECT 'delete', b.id, '{"files": ["derivates", "permanent", "tmp"]}'::jsonb
    FROM unnest(%(pic_ids)s::uuid[]) AS b (id)
    WHERE NOT EXISTS (SELECT 1 FROM updated u WHERE u.picture_to_delete_id = b.id)
    RETURNING 1
), deleted AS (
    DELETE FROM pictures p WHERE p.id = ANY(%(pic_ids)s::uuid[])
    RETURNING 1
)
SELECT (SELECT count(*) FROM deleted), (SELECT count(*) FROM queued) + (SELECT count(DISTINCT picture_to_delete_id) FROM updated);

-- name: upload_sets
-- Last, the account's upload sets (their `files` rows follow by cascade).
DELETE FROM upload_sets WHERE account_id = %(account_id)s;
