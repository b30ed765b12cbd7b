-- Upload sets, sequences, pictures and their ranks, with Panoramax's names.
-- No trigger deletes files when a picture row goes: deleting files is always an explicit decision
-- of an ops command (Panoramax's delete trigger turns a database-only cleanup into file deletion).
-- depends: 0002_accounts_tokens
CREATE TYPE picture_status AS ENUM (
    'preparing', 'broken', 'ready', 'hidden', 'waiting-for-process',
    'preparing-derivates', 'preparing-blur', 'waiting-for-delete'
);
CREATE TYPE picture_preparing_status AS ENUM ('not-processed', 'prepared', 'broken');
CREATE TYPE sequence_status AS ENUM ('preparing', 'broken', 'ready', 'hidden', 'waiting-for-process', 'deleted');
CREATE TYPE visibility_status AS ENUM ('anyone', 'owner-only', 'logged-only');

CREATE TABLE upload_sets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed boolean NOT NULL DEFAULT false,
    dispatched boolean NOT NULL DEFAULT false,
    title varchar NOT NULL,
    visibility visibility_status
);

CREATE INDEX upload_sets_account_id_idx ON upload_sets (account_id);

CREATE TABLE sequences (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    status sequence_status NOT NULL DEFAULT 'waiting-for-process',
    metadata jsonb,
    geom geometry(MultiLineString, 4326),
    bbox box2d,
    account_id uuid NOT NULL REFERENCES accounts (id),
    upload_set_id uuid REFERENCES upload_sets (id) ON DELETE SET NULL,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    min_picture_ts timestamptz,
    max_picture_ts timestamptz,
    nb_pictures bigint NOT NULL DEFAULT 0,
    visibility visibility_status NOT NULL DEFAULT 'anyone'
);

CREATE INDEX sequences_geom_idx ON sequences USING gist (geom);
CREATE INDEX sequences_account_id_idx ON sequences (account_id);
CREATE INDEX sequences_status_idx ON sequences (status);
CREATE INDEX sequences_upload_set_id_idx ON sequences (upload_set_id);

CREATE TABLE pictures (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    status picture_status NOT NULL DEFAULT 'waiting-for-process',
    preparing_status picture_preparing_status NOT NULL DEFAULT 'not-processed',
    ts timestamptz NOT NULL,
    heading integer,
    heading_computed boolean NOT NULL DEFAULT false,
    geom geometry(Point, 4326) NOT NULL,
    metadata jsonb,
    exif jsonb,
    account_id uuid NOT NULL REFERENCES accounts (id),
    upload_set_id uuid REFERENCES upload_sets (id) ON DELETE CASCADE,
    nb_errors integer NOT NULL DEFAULT 0,
    original_content_md5 uuid,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    visibility visibility_status NOT NULL DEFAULT 'anyone'
);

CREATE INDEX pictures_geom_idx ON pictures USING gist (geom);
-- (account_id, id): deleting an account's pictures pages through it by id, never rescanning what is gone.
CREATE INDEX pictures_account_id_idx ON pictures (account_id, id);
CREATE INDEX pictures_upload_set_id_idx ON pictures (upload_set_id);
CREATE INDEX pictures_status_idx ON pictures (status);
CREATE INDEX pictures_ts_idx ON pictures (ts);

CREATE TABLE sequences_pictures (
    seq_id uuid NOT NULL REFERENCES sequences (id) ON DELETE CASCADE,
    rank bigint NOT NULL,
    pic_id uuid NOT NULL REFERENCES pictures (id) ON DELETE CASCADE,
    PRIMARY KEY (seq_id, rank)
);

CREATE INDEX sequences_pictures_pic_id_idx ON sequences_pictures (pic_id);
