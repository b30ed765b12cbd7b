-- What a per-sequence database cleanup removes, table by table (after cleanup_select).
SELECT
    (SELECT count(*) FROM sequences WHERE id = ANY(%(seq_ids)s::uuid[])) AS sequences,
    (SELECT count(*) FROM sequences_pictures WHERE seq_id = ANY(%(seq_ids)s::uuid[])) AS sequences_pictures,
    (SELECT count(*) FROM cleanup_pictures) AS pictures,
    (SELECT count(*) FROM job_queue q
     WHERE q.sequence_id = ANY(%(seq_ids)s::uuid[]) OR q.picture_id IN (SELECT id FROM cleanup_pictures)) AS job_queue,
    (SELECT count(*) FROM upload_sets u
     WHERE u.id IN (SELECT p.upload_set_id FROM pictures p JOIN cleanup_pictures c ON c.id = p.id)
       AND NOT EXISTS (SELECT 1 FROM pictures p WHERE p.upload_set_id = u.id
                       AND p.id NOT IN (SELECT id FROM cleanup_pictures))) AS upload_sets;
