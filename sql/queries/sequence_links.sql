-- Links into sequences about to be deleted that have no cascade on a database built by Panoramax (each
-- run only where its table exists): without them the DELETE of the sequences fails.

-- name: pictures_changes
-- A picture's change history stays with the picture (deleted with it, or kept with a kept picture); only
-- its link to the change set of a deleted sequence is cleared (the column is nullable).
UPDATE pictures_changes SET sequences_changes_id = NULL
WHERE sequences_changes_id IN (SELECT id FROM sequences_changes WHERE sequence_id = ANY(%(seq_ids)s::uuid[]));

-- name: next_sequences
-- Unused by Panoramax since 2.x, but its foreign keys have no cascade.
DELETE FROM next_sequences WHERE seq_id = ANY(%(seq_ids)s::uuid[]) OR next_seq_id = ANY(%(seq_ids)s::uuid[]);
