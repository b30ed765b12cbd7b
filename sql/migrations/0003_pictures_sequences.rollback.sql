DROP TABLE sequences_pictures;
DROP TABLE pictures;
DROP TABLE sequences;
DROP TABLE upload_sets;
DROP TYPE visibility_status;
DROP TYPE sequence_status;
DROP TYPE picture_preparing_status;
DROP TYPE picture_status;
