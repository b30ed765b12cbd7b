-- Baseline of `ops user --delete-data`: the same deletes in one hand-written transaction.
UPDATE sequences SET status = 'deleted', updated_at = now() WHERE account_id = %(account_id)s AND status <> 'deleted';
INSERT INTO job_queue (task, picture_to_delete_id, args)
SELECT 'delete', id, '{"files": ["derivates", "permanent", "tmp"]}'::jsonb FROM pictures WHERE account_id = %(account_id)s
ON CONFLICT (picture_to_delete_id) DO NOTHING;
DELETE FROM pictures WHERE account_id = %(account_id)s;
DELETE FROM upload_sets WHERE account_id = %(account_id)s;
