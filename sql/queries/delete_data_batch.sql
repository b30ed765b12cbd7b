-- One batch of `ops user --delete-data`: delete up to %(batch_size)s pictures of the account and queue one
-- `delete` job per picture for their files, in the same statement (so the same transaction). Keyset paging
-- by id (index on account_id, id): a batch never rescans the rows earlier batches deleted.
WITH batch AS (
    SELECT id FROM pictures
    WHERE account_id = %(account_id)s AND id > %(after)s
    ORDER BY id
    LIMIT %(batch_size)s
    FOR UPDATE
), queued AS (
    INSERT INTO job_queue (task, picture_to_delete_id, args)
    SELECT 'delete', id, '{"files": ["derivates", "permanent", "tmp"]}'::jsonb FROM batch
    ON CONFLICT (picture_to_delete_id) DO UPDATE
    SET args = EXCLUDED.args, nb_errors = 0, to_do_after_ts = NULL
    RETURNING 1
), deleted AS (
    DELETE FROM pictures p USING batch b WHERE p.id = b.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM deleted), (SELECT count(*) FROM queued), (SELECT id FROM batch ORDER BY id DESC LIMIT 1);
