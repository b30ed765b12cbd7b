-- Per account: sequences and pictures (those of deleted sequences excluded) and first/last capture time.
CREATE MATERIALIZED VIEW accounts_stats AS
WITH deleted_pictures AS (
    SELECT sp.pic_id
    FROM sequences_pictures sp
    JOIN sequences s ON s.id = sp.seq_id
    WHERE s.status = 'deleted'
), seqs AS (
    SELECT account_id, count(*) AS nb_sequences
    FROM sequences
    WHERE status <> 'deleted'
    GROUP BY account_id
), pics AS (
    SELECT account_id, count(*) AS nb_pictures, min(ts) AS first_capture_ts, max(ts) AS last_capture_ts
    FROM pictures
    WHERE id NOT IN (SELECT pic_id FROM deleted_pictures)
    GROUP BY account_id
)
SELECT a.id AS account_id,
       a.name,
       coalesce(seqs.nb_sequences, 0) AS nb_sequences,
       coalesce(pics.nb_pictures, 0) AS nb_pictures,
       pics.first_capture_ts,
       pics.last_capture_ts
FROM accounts a
LEFT JOIN seqs ON seqs.account_id = a.id
LEFT JOIN pics ON pics.account_id = a.id;

CREATE UNIQUE INDEX accounts_stats_account_id_idx ON accounts_stats (account_id);
