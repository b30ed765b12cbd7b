-- `ops doctor`: one statement per check, each returning the count of what it found and the first ids
-- (%(shown)s of them, in id order): (count, ids). Read-only. %(seq_ids)s (NULL: every sequence) narrows the
-- checks of sequences and of their pictures; %(stuck_after)s is how old a state must be to be stuck. The
-- cost of each is said above it: "one pass" is one scan of the tables named.

-- name: seq_geometry
-- Stored geometry differs from compute_sequence_geom for the current ranks. One pass over sequences_pictures
-- and pictures computing every line by the rule set-based (as the reorder baseline, byte-identical to the
-- function on the bench instances), then the function itself (~1 ms with JIT off) on the candidates only,
-- which decides: a rule Panoramax changed some day would only make this slower, never wrong.
WITH target AS (
    SELECT id, geom FROM sequences
    WHERE status <> 'deleted' AND (%(seq_ids)s::uuid[] IS NULL OR id = ANY(%(seq_ids)s::uuid[]))
), pics AS (
    SELECT sp.seq_id, sp.rank, p.geom
    FROM sequences_pictures sp JOIN pictures p ON p.id = sp.pic_id JOIN target t ON t.id = sp.seq_id
), lines AS (
    SELECT seq_id, ST_MakeLine(geom ORDER BY rank) AS line FROM pics GROUP BY seq_id
), segments AS (
    SELECT l.seq_id, d.path, d.geom AS segment FROM lines l, ST_DumpSegments(l.line) AS d
), merged AS (
    -- a segment shorter than 75 m by its length in degrees times the most meters a degree spans (111.7 km) is
    -- shorter than 75 m on the ellipsoid too: only the others pay the geodesic length (most are a few meters)
    SELECT seq_id, ST_LineMerge(ST_Collect(segment ORDER BY path)) AS geom
    FROM segments
    WHERE CASE WHEN ST_Length(segment) * 112000 <= 75 THEN true ELSE ST_Length(segment::geography) <= 75 END
    GROUP BY seq_id
), candidates AS MATERIALIZED (  -- materialized: the function runs on the candidates only, after the rule
    SELECT t.id, t.geom FROM target t LEFT JOIN merged m ON m.seq_id = t.id
    WHERE ST_AsEWKB(t.geom) IS DISTINCT FROM ST_AsEWKB(CASE WHEN NOT ST_IsEmpty(m.geom) THEN ST_Multi(m.geom) END)
), stale AS (
    SELECT id FROM candidates WHERE ST_AsEWKB(geom) IS DISTINCT FROM ST_AsEWKB(compute_sequence_geom(id))
)
SELECT count(*), (SELECT array_agg(id) FROM (SELECT id FROM stale ORDER BY id LIMIT %(shown)s) f) FROM stale

-- name: seq_fields
-- bbox, first/last capture time or picture count differ from the pictures. One pass over sequences_pictures
-- and pictures (aggregates).
WITH target AS (
    SELECT * FROM sequences
    WHERE status <> 'deleted' AND (%(seq_ids)s::uuid[] IS NULL OR id = ANY(%(seq_ids)s::uuid[]))
), facts AS (
    SELECT sp.seq_id, min(p.ts) AS min_ts, max(p.ts) AS max_ts, count(*) AS nb, ST_Extent(p.geom) AS bbox
    FROM sequences_pictures sp JOIN pictures p ON p.id = sp.pic_id JOIN target t ON t.id = sp.seq_id
    GROUP BY sp.seq_id
), stale AS (
    SELECT t.id FROM target t LEFT JOIN facts f ON f.seq_id = t.id
    WHERE t.bbox::text IS DISTINCT FROM f.bbox::text OR t.min_picture_ts IS DISTINCT FROM f.min_ts
       OR t.max_picture_ts IS DISTINCT FROM f.max_ts OR t.nb_pictures IS DISTINCT FROM coalesce(f.nb, 0)
)
SELECT count(*), (SELECT array_agg(id) FROM (SELECT id FROM stale ORDER BY id LIMIT %(shown)s) f) FROM stale

-- name: seq_ranks
-- Ranks with gaps, or not starting at 1. One pass over sequences_pictures (its primary key's order).
WITH stale AS (
    SELECT sp.seq_id AS id FROM sequences_pictures sp JOIN sequences s ON s.id = sp.seq_id
    WHERE s.status <> 'deleted' AND (%(seq_ids)s::uuid[] IS NULL OR sp.seq_id = ANY(%(seq_ids)s::uuid[]))
    GROUP BY sp.seq_id HAVING min(sp.rank) <> 1 OR max(sp.rank) <> count(*)
)
SELECT count(*), (SELECT array_agg(id) FROM (SELECT id FROM stale ORDER BY id LIMIT %(shown)s) f) FROM stale

-- name: seq_empty
-- Ready sequences holding no picture (shown on the map as nothing). An index lookup per ready sequence.
WITH stale AS (
    SELECT s.id FROM sequences s
    WHERE s.status = 'ready' AND (%(seq_ids)s::uuid[] IS NULL OR s.id = ANY(%(seq_ids)s::uuid[]))
      AND NOT EXISTS (SELECT 1 FROM sequences_pictures sp WHERE sp.seq_id = s.id)
)
SELECT count(*), (SELECT array_agg(id) FROM (SELECT id FROM stale ORDER BY id LIMIT %(shown)s) f) FROM stale

-- name: seq_headings
-- Sequences with movement (pictures at two positions or more) holding pictures without heading, and how many
-- such pictures. One pass over sequences_pictures and pictures.
WITH per_sequence AS (
    SELECT sp.seq_id, count(*) FILTER (WHERE p.heading IS NULL) AS missing,
           -- two positions or more: the points' extent is not one point (no sort, unlike a DISTINCT count)
           min(ST_X(p.geom)) <> max(ST_X(p.geom)) OR min(ST_Y(p.geom)) <> max(ST_Y(p.geom)) AS moves
    FROM sequences_pictures sp JOIN pictures p ON p.id = sp.pic_id JOIN sequences s ON s.id = sp.seq_id
    WHERE s.status <> 'deleted' AND (%(seq_ids)s::uuid[] IS NULL OR sp.seq_id = ANY(%(seq_ids)s::uuid[]))
    GROUP BY sp.seq_id
), stale AS (
    SELECT seq_id AS id, missing FROM per_sequence WHERE missing > 0 AND moves
)
SELECT count(*), (SELECT array_agg(id) FROM (SELECT id FROM stale ORDER BY id LIMIT %(shown)s) f),
       coalesce(sum(missing), 0)::bigint || ' pictures without heading'
FROM stale

-- name: pic_stuck
-- Pictures in a processing status for longer than %(stuck_after)s with no job queued for them. An index
-- lookup on the status, then one on the queue per picture found.
WITH stuck AS (
    SELECT p.id FROM pictures p
    WHERE p.status IN ('waiting-for-process', 'preparing', 'preparing-derivates', 'preparing-blur')
      AND p.updated_at < now() - %(stuck_after)s::interval
      AND NOT EXISTS (SELECT 1 FROM job_queue q WHERE q.picture_id = p.id)
      AND (%(seq_ids)s::uuid[] IS NULL
           OR p.id IN (SELECT pic_id FROM sequences_pictures WHERE seq_id = ANY(%(seq_ids)s::uuid[])))
)
SELECT count(*), (SELECT array_agg(id) FROM (SELECT id FROM stuck ORDER BY id LIMIT %(shown)s) f) FROM stuck

-- name: pic_waiting_delete
-- Pictures waiting for deletion with no delete job queued for them: they will never go. Index lookups.
WITH stuck AS (
    SELECT p.id FROM pictures p
    WHERE p.status = 'waiting-for-delete'
      AND NOT EXISTS (SELECT 1 FROM job_queue q WHERE q.task = 'delete'
                      AND (q.picture_id = p.id OR q.picture_to_delete_id = p.id))
      AND (%(seq_ids)s::uuid[] IS NULL
           OR p.id IN (SELECT pic_id FROM sequences_pictures WHERE seq_id = ANY(%(seq_ids)s::uuid[])))
)
SELECT count(*), (SELECT array_agg(id) FROM (SELECT id FROM stuck ORDER BY id LIMIT %(shown)s) f) FROM stuck

-- name: pic_broken
-- Broken pictures with no job queued for them (a retried one waits for its worker), grouped by the first
-- line of the last error their jobs recorded: per group, the count and the first ids of the failed jobs (to
-- retry). An index lookup on the status, then one on the queue and one on the history per picture.
WITH broken AS (
    SELECT p.id FROM pictures p
    WHERE (p.status = 'broken' OR p.preparing_status = 'broken')
      AND NOT EXISTS (SELECT 1 FROM job_queue q WHERE q.picture_id = p.id)
      AND (%(seq_ids)s::uuid[] IS NULL
           OR p.id IN (SELECT pic_id FROM sequences_pictures WHERE seq_id = ANY(%(seq_ids)s::uuid[])))
), last AS (
    SELECT b.id, h.job_id, coalesce(nullif(split_part(h.error, E'\n', 1), ''), 'no error recorded') AS reason
    FROM broken b
    LEFT JOIN LATERAL (SELECT job_id, error FROM job_history h WHERE h.picture_id = b.id AND h.error IS NOT NULL
                       ORDER BY h.started_at DESC LIMIT 1) h ON true
)
SELECT reason, count(*),
       (array_agg(job_id ORDER BY job_id) FILTER (WHERE job_id IS NOT NULL))[1:coalesce(%(shown)s::int, 2147483647)]
FROM last GROUP BY reason ORDER BY count(*) DESC, reason

-- name: pic_unsequenced
-- Pictures in no sequence, older than %(stuck_after)s, whose upload set is finished (or that have none):
-- nothing will ever show them. One pass over pictures, an index lookup on sequences_pictures per picture.
WITH lost AS (
    SELECT p.id FROM pictures p
    LEFT JOIN upload_sets u ON u.id = p.upload_set_id
    WHERE p.inserted_at < now() - %(stuck_after)s::interval
      AND (u.id IS NULL OR (u.completed AND u.dispatched))
      AND NOT EXISTS (SELECT 1 FROM sequences_pictures sp WHERE sp.pic_id = p.id)
)
SELECT count(*), (SELECT array_agg(id) FROM (SELECT id FROM lost ORDER BY id LIMIT %(shown)s) f) FROM lost

-- name: job_orphan
-- Queued jobs whose target is gone (a picture, sequence or upload set). One pass over the queue.
WITH lost AS (
    SELECT q.id FROM job_queue q
    WHERE (q.picture_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pictures p WHERE p.id = q.picture_id))
       OR (q.sequence_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sequences s WHERE s.id = q.sequence_id))
       OR (q.upload_set_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM upload_sets u WHERE u.id = q.upload_set_id))
)
SELECT count(*), (SELECT array_agg(id) FROM (SELECT id FROM lost ORDER BY id LIMIT %(shown)s) f) FROM lost

-- name: upload_undispatched
-- Upload sets completed but not dispatched, created longer than %(stuck_after)s ago, with no dispatch job
-- queued. One pass over upload_sets.
WITH stuck AS (
    SELECT u.id FROM upload_sets u
    WHERE u.completed AND NOT u.dispatched AND u.created_at < now() - %(stuck_after)s::interval
      AND NOT EXISTS (SELECT 1 FROM job_queue q WHERE q.upload_set_id = u.id)
)
SELECT count(*), (SELECT array_agg(id) FROM (SELECT id FROM stuck ORDER BY id LIMIT %(shown)s) f) FROM stuck

-- name: upload_files_lost
-- `files` rows (Panoramax's upload bookkeeping) naming a picture that is gone. One pass over files.
WITH lost AS (
    SELECT f.picture_id AS id FROM files f
    WHERE f.picture_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pictures p WHERE p.id = f.picture_id)
)
SELECT count(*), (SELECT array_agg(id) FROM (SELECT DISTINCT id FROM lost ORDER BY id LIMIT %(shown)s) f) FROM lost

-- name: grid_expired
-- Panoramax's grid cells waiting for a refresh, and since when (the oldest). An index-free count.
SELECT count(*), min(inserted_at) FROM pictures_aggregate_grid_expired

-- name: db_invalid_indexes
-- Indexes left invalid by a failed CREATE INDEX CONCURRENTLY (catalogs only), named as SQL writes them
-- (quote_ident: the printed fix runs as printed, whatever the name holds).
SELECT quote_ident(c.relname), t.relname FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
WHERE NOT i.indisvalid AND c.relnamespace = current_schema()::regnamespace
ORDER BY c.relname

-- name: db_xid_age
-- Transaction-ID age of the database and of its oldest tables (catalogs only).
SELECT 'database ' || quote_ident(current_database()), age(datfrozenxid)::bigint FROM pg_database
WHERE datname = current_database()
UNION ALL
(SELECT 'table ' || quote_ident(c.relname), age(c.relfrozenxid)::bigint FROM pg_class c
 WHERE c.relkind IN ('r', 'm') AND c.relnamespace = current_schema()::regnamespace
 ORDER BY age(c.relfrozenxid) DESC LIMIT 5)

-- name: db_idle_in_transaction
-- Sessions idle in a transaction for more than 10 minutes that hold locks on this database's tables: they
-- block every migration and cleanup (catalogs only).
SELECT a.pid, a.application_name, a.state_change, array_agg(DISTINCT l.relation::regclass::text)
FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
WHERE a.state LIKE 'idle in transaction%%' AND a.state_change < now() - %(idle_after)s::interval
  AND l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND a.pid <> pg_backend_pid()
GROUP BY a.pid, a.application_name, a.state_change
ORDER BY a.state_change

-- name: acc_default
-- How many accounts are the default one, and how many tokens it has (the first of them).
SELECT (SELECT count(*) FROM accounts WHERE is_default),
       (SELECT count(*) FROM tokens t JOIN accounts a ON a.id = t.account_id WHERE a.is_default),
       (SELECT array_agg(id ORDER BY id) FROM accounts WHERE is_default)
