-- Which of these pictures (named by stored files) have neither a row nor a pending `delete` job: their
-- files are orphans.
SELECT ids.id FROM unnest(%(ids)s::uuid[]) AS ids (id)
WHERE NOT EXISTS (SELECT 1 FROM pictures p WHERE p.id = ids.id)
  AND NOT EXISTS (SELECT 1 FROM job_queue q WHERE q.picture_to_delete_id = ids.id);
