-- What a whole-instance database cleanup removes, table by table.
SELECT
    (SELECT count(*) FROM sequences) AS sequences,
    (SELECT count(*) FROM sequences_pictures) AS sequences_pictures,
    (SELECT count(*) FROM pictures) AS pictures,
    (SELECT count(*) FROM job_queue WHERE picture_to_delete_id IS NULL) AS job_queue,
    (SELECT count(*) FROM upload_sets) AS upload_sets;
