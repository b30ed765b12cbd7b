-- What a cleanup removes: its selection of pictures (id, and one cleaned sequence holding it), held in the
-- temporary table cleanup_pictures by the transaction that deletes, or read in place by a dry run (the
-- same text as a CTE of the same name): the counts and the deletions below read cleanup_pictures either way.

-- name: of_sequences
-- The pictures of the given sequences that belong to no other sequence. A picture shared with a sequence
-- not being cleaned is kept, row and files (`<> ALL`, not Panoramax's `!= ANY`, which is true for every
-- row as soon as two ids are given). seq_id: one of the cleaned sequences holding the picture, named in
-- its delete job so that a re-run of an interrupted cleanup recognises its sequences.
SELECT sp.pic_id AS id, (array_agg(sp.seq_id ORDER BY sp.seq_id))[1] AS seq_id
FROM sequences_pictures sp
WHERE sp.seq_id = ANY(%(seq_ids)s::uuid[])
  AND NOT EXISTS (
      SELECT 1 FROM sequences_pictures other
      WHERE other.pic_id = sp.pic_id AND other.seq_id <> ALL(%(seq_ids)s::uuid[])
  )
GROUP BY sp.pic_id

-- name: whole_instance_batch
-- A batch of the whole instance's pictures (their sequences are gone by then), locked for the deletion.
SELECT p.id, NULL::uuid AS seq_id FROM pictures p ORDER BY p.id LIMIT %(batch_size)s FOR UPDATE

-- name: hold
CREATE TEMPORARY TABLE cleanup_pictures ON COMMIT DROP AS {selection}

-- name: primary_key
ALTER TABLE cleanup_pictures ADD PRIMARY KEY (id)

-- name: counts
-- What a database cleanup of the selection removes, table by table.
SELECT
    (SELECT count(*) FROM sequences WHERE id = ANY(%(seq_ids)s::uuid[])) AS sequences,
    (SELECT count(*) FROM sequences_pictures WHERE seq_id = ANY(%(seq_ids)s::uuid[])) AS sequences_pictures,
    (SELECT count(*) FROM cleanup_pictures) AS pictures,
    (SELECT count(*) FROM job_queue q
     WHERE q.sequence_id = ANY(%(seq_ids)s::uuid[]) OR q.picture_id IN (SELECT id FROM cleanup_pictures)) AS job_queue,
    (SELECT count(*) FROM upload_sets u
     WHERE u.id IN (SELECT p.upload_set_id FROM pictures p JOIN cleanup_pictures c ON c.id = p.id)
       AND NOT EXISTS (SELECT 1 FROM pictures p WHERE p.upload_set_id = u.id
                       AND p.id NOT IN (SELECT id FROM cleanup_pictures))) AS upload_sets

-- name: preview_counts
-- A dry run's counts: the selection read in place (nothing created, in a read-only transaction).
WITH cleanup_pictures AS MATERIALIZED ({selection}) {counts}

-- name: preview_ids
WITH cleanup_pictures AS MATERIALIZED ({selection}) SELECT id FROM cleanup_pictures ORDER BY id

-- name: held_ids
SELECT id FROM cleanup_pictures ORDER BY id

-- name: pictures_page
-- Every picture, a page at a time (keyset): the whole instance's files, counted or deleted by picture.
SELECT id FROM pictures WHERE id > %(after)s ORDER BY id LIMIT %(batch_size)s

-- name: delete_jobs_waiting
-- Delete jobs left in the queue after a cleanup of named sequences (Panoramax's, other cleanups'): the worker's.
SELECT count(*) FROM job_queue WHERE task = 'delete'

-- name: existing
-- Which of these pictures (named by stored files) have a row: a whole-instance cleanup deletes their files.
SELECT id FROM pictures WHERE id = ANY(%(ids)s::uuid[])
