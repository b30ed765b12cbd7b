-- What an account holds: its sequences not deleted, pictures, upload sets and tokens (`ops user`, and the
-- counts of `--delete-data --dry-run`).
SELECT
    (SELECT count(*) FROM sequences WHERE account_id = %(account_id)s AND status <> 'deleted') AS sequences,
    (SELECT count(*) FROM pictures WHERE account_id = %(account_id)s) AS pictures,
    (SELECT count(*) FROM upload_sets WHERE account_id = %(account_id)s) AS upload_sets,
    (SELECT count(*) FROM tokens WHERE account_id = %(account_id)s) AS tokens;
