-- The job queue drained by `ops worker`, and the history of the jobs it ran.
-- At most one queued job per target; picture_to_delete_id has no foreign key on purpose:
-- the picture row is gone when its files are deleted.
-- The history keeps plain ids, without foreign keys: it outlives the rows it speaks of (an audit trail of
-- what was deleted and of errors), and deleting pictures never has to scan it.
-- depends: 0003_pictures_sequences
CREATE TYPE job_type AS ENUM ('prepare', 'delete', 'dispatch', 'finalize', 'read_metadata', 'transfer');

CREATE TABLE job_queue (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    picture_id uuid UNIQUE REFERENCES pictures (id) ON DELETE CASCADE,
    upload_set_id uuid UNIQUE REFERENCES upload_sets (id) ON DELETE CASCADE,
    sequence_id uuid UNIQUE REFERENCES sequences (id) ON DELETE CASCADE,
    picture_to_delete_id uuid UNIQUE,
    task job_type NOT NULL,
    args jsonb,
    ts timestamptz NOT NULL DEFAULT now(),
    nb_errors integer NOT NULL DEFAULT 0,
    to_do_after_ts timestamptz,
    CONSTRAINT one_external_id CHECK (num_nonnulls(picture_id, upload_set_id, sequence_id, picture_to_delete_id) = 1)
);

CREATE INDEX job_queue_nb_errors_ts_idx ON job_queue (nb_errors, ts);
CREATE INDEX job_queue_task_idx ON job_queue (task, to_do_after_ts);

CREATE TABLE job_history (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id uuid NOT NULL,
    picture_id uuid,
    upload_set_id uuid,
    sequence_id uuid,
    picture_to_delete_id uuid,
    job_task job_type NOT NULL,
    args jsonb,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    error varchar,
    warning varchar,
    CONSTRAINT one_external_id CHECK (num_nonnulls(picture_id, upload_set_id, sequence_id, picture_to_delete_id) = 1)
);

CREATE INDEX job_history_job_id_idx ON job_history (job_id);
CREATE INDEX job_history_picture_to_delete_id_idx ON job_history (picture_to_delete_id);
