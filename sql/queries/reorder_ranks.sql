-- The order of a sequence's pictures: ranks 1..n in the order its owner chose through Panoramax, else by
-- (ts, originalFileName, id). A dry run reads `preview`; a real run writes with `ranks` then `flip`. Both
-- return, per sequence of the batch that has pictures, its facts (first/last capture time, number of
-- pictures: read in the same pass, for sequence_derived), how many pictures move, and the choice followed.
--
-- The choice, with Panoramax's own rules (geovisio/utils/sequences.py sort_collection, geopic-tag-reader's
-- sort_pictures): the sequence's `current_sort` (PATCH sortby: +/-gpsdate, +/-filedate, +/-filename), else
-- its upload set's `sort_method` (filename-asc/desc, time-asc/desc, applied at dispatch). By file name: the
-- stems compared as integers when every stem of the sequence is one, else as text in code-point order; by
-- GPS or camera date: metadata's ts_gps / ts_camera (the capture time where missing); time-asc/desc: GPS
-- time when every picture has one, else camera time when every picture has one, else the capture time.
-- Ties keep the current order. Both columns (and sequences.upload_set_id, which Panoramax 2.8 lacks) are
-- placeholders, NULL where the database lacks them (built by ops, or by a Panoramax release before them):
-- capabilities.optional_columns. The choices are read first (`choices`; ops sequences reorder
-- --by-capture-time ignores them), and a picture's metadata once per picture (jsonb_to_record): each `->>`
-- would decompress it again. %(keep_order)s: keep the current order, only renumbering 1..n (doctor's fixes:
-- a gap closed in place).

-- name: choices
-- The sequences of %(seq_ids)s whose owner chose an order, with the choice ("current_sort -filename",
-- "upload set filename-asc"). Read first, so `ordered` ranks each kind with the plan that suits it.
SELECT s.id, coalesce('current_sort ' || {s_current_sort}, 'upload set ' || {u_sort_method})
FROM sequences s LEFT JOIN upload_sets u ON u.id = {s_upload_set_id}
WHERE s.id = ANY(%(seq_ids)s::uuid[]) AND coalesce({s_current_sort}, {u_sort_method}) IS NOT NULL

-- name: ordered
-- %(plain_ids)s: sequences ranked by (ts, originalFileName, id); %(chosen_ids)s with %(choices)s: those
-- ranked as their owner chose (`choices`).
WITH choice AS (
    SELECT * FROM unnest(%(chosen_ids)s::uuid[], %(choices)s::text[]) AS c (seq_id, choice)
), plain AS (  -- sequences without a choice: by (ts, originalFileName, id), the cheap key
    SELECT sp.seq_id, sp.rank AS old_rank, sp.pic_id, p.ts, NULL::text AS choice,
           row_number() OVER (PARTITION BY sp.seq_id
                              ORDER BY CASE WHEN %(keep_order)s THEN sp.rank END, p.ts,
                                       p.metadata ->> 'originalFileName', p.id, sp.rank) AS new_rank
    FROM sequences_pictures sp
    JOIN pictures p ON p.id = sp.pic_id
    WHERE sp.seq_id = ANY(%(plain_ids)s::uuid[])
), keyed AS (  -- sequences whose owner chose an order
    SELECT sp.seq_id, sp.rank AS old_rank, p.id, p.ts, m."originalFileName" AS file_name, c.choice,
           CASE WHEN c.choice LIKE '%%filename%%'
                THEN regexp_replace(regexp_replace(coalesce(m."originalFileName", ''), '^.*/', ''),
                                    '(?<=.)\.[^.]*$', '') END AS stem,
           CASE WHEN (c.choice LIKE '%%gpsdate' OR c.choice LIKE '%%time-%%')
                     AND m.ts_gps ~ '^\d\d\d\d-\d\d-\d\d' THEN m.ts_gps::timestamptz END AS ts_gps,
           CASE WHEN (c.choice LIKE '%%filedate' OR c.choice LIKE '%%time-%%')
                     AND m.ts_camera ~ '^\d\d\d\d-\d\d-\d\d' THEN m.ts_camera::timestamptz END AS ts_camera,
           coalesce(c.choice LIKE '%%-filename' OR c.choice LIKE '%%-filedate' OR c.choice LIKE '%%-gpsdate'
                    OR c.choice LIKE '%%-desc', false) AS descending
    FROM sequences_pictures sp
    JOIN pictures p ON p.id = sp.pic_id
    JOIN choice c ON c.seq_id = sp.seq_id
    CROSS JOIN LATERAL jsonb_to_record(p.metadata) AS m ("originalFileName" text, ts_gps text, ts_camera text)
    WHERE sp.seq_id = ANY(%(chosen_ids)s::uuid[])
), sorted AS (
    SELECT k.*,
           CASE WHEN k.choice LIKE '%%filename%%' AND bool_and(k.stem ~ '^\s*[+-]?[0-9]+\s*$') OVER seq
                THEN trim(k.stem)::numeric END AS stem_number,
           CASE WHEN k.choice LIKE '%%gpsdate' THEN coalesce(k.ts_gps, k.ts)
                WHEN k.choice LIKE '%%filedate' THEN coalesce(k.ts_camera, k.ts)
                WHEN k.choice LIKE '%%time-%%' THEN CASE
                    WHEN bool_and(k.ts_gps IS NOT NULL) OVER seq THEN k.ts_gps
                    WHEN bool_and(k.ts_camera IS NOT NULL) OVER seq THEN k.ts_camera
                    ELSE k.ts END END AS sort_time,
           CASE WHEN k.choice LIKE '%%time-%%' THEN CASE
                    WHEN bool_and(k.ts_gps IS NOT NULL) OVER seq THEN k.ts_camera
                    WHEN bool_and(k.ts_camera IS NOT NULL) OVER seq THEN k.ts_gps END END AS sort_time_2
    FROM keyed k
    WINDOW seq AS (PARTITION BY k.seq_id)
)
SELECT seq_id, old_rank, pic_id, ts, choice, new_rank FROM plain
UNION ALL
SELECT seq_id, old_rank, id, ts, choice,
       row_number() OVER (
           PARTITION BY seq_id
           ORDER BY CASE WHEN %(keep_order)s THEN old_rank END,
                    CASE WHEN NOT descending THEN stem_number END, CASE WHEN descending THEN stem_number END DESC,
                    CASE WHEN NOT descending THEN stem COLLATE "C" END,
                    CASE WHEN descending THEN stem COLLATE "C" END DESC,
                    CASE WHEN NOT descending THEN sort_time END, CASE WHEN descending THEN sort_time END DESC,
                    CASE WHEN NOT descending THEN sort_time_2 END, CASE WHEN descending THEN sort_time_2 END DESC,
                    old_rank) AS new_rank
FROM sorted

-- name: preview
WITH ordered AS ({ordered})
SELECT seq_id, min(ts), max(ts), count(*), count(*) FILTER (WHERE old_rank <> new_rank), max(choice)
FROM ordered GROUP BY seq_id ORDER BY seq_id

-- name: lock
-- The rows of the sequences about to move, locked for the transaction (FOR NO KEY UPDATE: what `ranks` takes
-- anyway): a change to them by someone else waits until the pictures have traded places.
SELECT count(*) FROM (
    SELECT FROM sequences_pictures WHERE seq_id = ANY(%(seq_ids)s::uuid[]) FOR NO KEY UPDATE
) locked

-- name: ranks
-- Writes the order, after `lock`. A sequence ranked 1..n (no gap) keeps its ranks: the picture wanted at
-- each rank takes that rank's row (pic_id rewritten), one write per picture moved and no (seq_id, rank)
-- collision. One with gaps is renumbered 1..n in two steps, as the primary key is not deferrable: here
-- every picture whose rank changes gets its new rank negated, then `flip` makes them positive (each row
-- written twice; measured at 1M, the second write checks both foreign keys again, 2.2 s for 109k rows).
-- Returns, per sequence: its facts, how many pictures moved, the choice followed, and whether to flip.
WITH ordered AS ({ordered}), shaped AS (  -- the moves, each with whether its sequence is ranked 1..n
    SELECT o.seq_id, o.old_rank, o.new_rank, o.pic_id,
           count(*) OVER seq = max(o.old_rank) OVER seq AND min(o.old_rank) OVER seq = 1 AS gapless
    FROM ordered o WINDOW seq AS (PARTITION BY o.seq_id)
), placed AS (  -- no gap: the picture wanted at each rank, into the row of that rank
    UPDATE sequences_pictures sp
    SET pic_id = o.pic_id
    FROM shaped o
    WHERE sp.seq_id = o.seq_id AND sp.rank = o.new_rank AND o.old_rank <> o.new_rank AND o.gapless
    RETURNING sp.seq_id
), negated AS (  -- gaps: new ranks, negated
    UPDATE sequences_pictures sp
    SET rank = -o.new_rank
    FROM shaped o
    WHERE sp.seq_id = o.seq_id AND sp.rank = o.old_rank AND o.old_rank <> o.new_rank AND NOT o.gapless
    RETURNING sp.seq_id
), moved_per_sequence AS (
    SELECT seq_id, count(*) AS n, bool_or(flip) AS flip
    FROM (SELECT seq_id, false AS flip FROM placed UNION ALL SELECT seq_id, true FROM negated) m
    GROUP BY seq_id
), facts AS (  -- one row per sequence before the join (a join per picture costs more than the ranking)
    SELECT seq_id, min(ts) AS min_ts, max(ts) AS max_ts, count(*) AS n, max(choice) AS choice
    FROM ordered GROUP BY seq_id
)
SELECT f.seq_id, f.min_ts, f.max_ts, f.n, coalesce(m.n, 0), f.choice, coalesce(m.flip, false)
FROM facts f LEFT JOIN moved_per_sequence m ON m.seq_id = f.seq_id
ORDER BY f.seq_id

-- name: flip
-- Step 2 of a renumbering: the negated ranks become positive.
UPDATE sequences_pictures SET rank = -rank WHERE seq_id = ANY(%(changed)s::uuid[]) AND rank < 0

-- name: owner_chosen
-- The sequences (not deleted; %(seq_ids)s NULL: all) whose owner chose an order other than capture time:
-- a collection sort, or an upload set sorted by file name or newest first. Doctor's SEQ006 checks their order.
SELECT s.id FROM sequences s LEFT JOIN upload_sets u ON u.id = {s_upload_set_id}
WHERE s.status <> 'deleted' AND (%(seq_ids)s::uuid[] IS NULL OR s.id = ANY(%(seq_ids)s::uuid[]))
  AND ({s_current_sort} IS NOT NULL OR {u_sort_method} IN ('filename-asc', 'filename-desc', 'time-desc'))
ORDER BY s.id

-- name: contradicting
-- Of those, the ones whose pictures are not in the chosen order (gaps in ranks aside): (count, first ids).
WITH ordered AS ({ordered}), compared AS (
    SELECT seq_id, new_rank, row_number() OVER (PARTITION BY seq_id ORDER BY old_rank) AS current_rank
    FROM ordered
), differing AS (
    SELECT seq_id FROM compared GROUP BY seq_id HAVING bool_or(new_rank <> current_rank)
)
SELECT count(*), (SELECT array_agg(seq_id) FROM (SELECT seq_id FROM differing ORDER BY seq_id LIMIT %(shown)s) f)
FROM differing
