-- Whole-instance database cleanup, in batches (never TRUNCATE: it would cascade into the history tables of
-- a Panoramax database and hold an exclusive lock on every table at once): the sequences here, then the
-- pictures a batch at a time by the statements of a per-sequence cleanup (cleanup_select's
-- whole_instance_batch, cleanup_delete), then what is left of the upload sets. Accounts and tokens stay;
-- delete jobs already queued (files of pictures gone earlier) stay.

-- name: sequence_batch
SELECT id FROM sequences ORDER BY id LIMIT %(batch_size)s;

-- name: sequences
DELETE FROM sequences WHERE id = ANY(%(seq_ids)s::uuid[]);

-- name: upload_sets
WITH batch AS (SELECT id FROM upload_sets ORDER BY id LIMIT %(batch_size)s)
DELETE FROM upload_sets u USING batch b WHERE u.id = b.id;
