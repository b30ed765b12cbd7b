-- The SQL that `ops doctor` prints as the fix of a finding no ops command repairs: shown to the operator,
-- never run by ops. `{ids_sql}` is the comma-separated ids found, `{id}` one id (one statement each),
-- `{ids}` the id itself; braces of PostgreSQL array literals are doubled.

-- name: pic001
INSERT INTO job_queue (task, picture_id) SELECT 'prepare', unnest('{{{ids_sql}}}'::uuid[]) ON CONFLICT DO NOTHING;

-- name: pic002
INSERT INTO job_queue (task, picture_id) SELECT 'delete', unnest('{{{ids_sql}}}'::uuid[]) ON CONFLICT DO NOTHING;

-- name: pic004
DELETE FROM pictures WHERE id = ANY('{{{ids_sql}}}'::uuid[]);

-- name: job001
DELETE FROM job_queue WHERE id = ANY('{{{ids_sql}}}'::uuid[]);

-- name: upl001
INSERT INTO job_queue (task, upload_set_id) SELECT 'dispatch', unnest('{{{ids_sql}}}'::uuid[]) ON CONFLICT DO NOTHING;

-- name: upl002
UPDATE files SET picture_id = NULL WHERE picture_id = ANY('{{{ids_sql}}}'::uuid[]);

-- name: db001
REINDEX INDEX CONCURRENTLY {id};

-- name: db003
VACUUM (FREEZE);

-- name: db004
SELECT pg_terminate_backend({id});

-- name: acc001
UPDATE accounts SET is_default = (id = '<the one to keep>') WHERE is_default;

-- name: acc002
INSERT INTO tokens (account_id, description) VALUES ('{ids}', 'default token');
