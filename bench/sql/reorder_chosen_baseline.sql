-- Baseline of `ops sequences reorder` on a database where users chose orders through Panoramax (a collection's
-- sort, an upload set's sort_method): as reorder_baseline.sql, over every sequence in one transaction, but
-- ranked by the same rule as ops (bench.baseline composes ops's own `ordered` of sql/queries/reorder_ranks.sql
-- in place of the `ordered` placeholder, the choices read as ops reads them), so both sides give the same ranks
-- (bench.suite checks them equal). The rule is the specification; what the pair compares is the work around it.
CREATE TEMPORARY TABLE moved (seq_id uuid PRIMARY KEY) ON COMMIT DROP;

WITH ordered AS ({ordered}), upd AS (
    UPDATE sequences_pictures sp SET rank = -o.new_rank
    FROM ordered o
    WHERE sp.seq_id = o.seq_id AND sp.rank = o.old_rank AND o.old_rank <> o.new_rank
    RETURNING sp.seq_id
)
INSERT INTO moved SELECT DISTINCT seq_id FROM upd;

UPDATE sequences_pictures sp SET rank = -sp.rank FROM moved m WHERE sp.seq_id = m.seq_id AND sp.rank < 0;

WITH pics AS (
    SELECT sp.seq_id, sp.rank, p.geom, p.ts
    FROM moved m JOIN sequences_pictures sp ON sp.seq_id = m.seq_id JOIN pictures p ON p.id = sp.pic_id
), lines AS (
    SELECT seq_id, ST_MakeLine(geom ORDER BY rank) AS line, ST_Extent(geom) AS bbox,
           min(ts) AS min_ts, max(ts) AS max_ts, count(*) AS nb
    FROM pics GROUP BY seq_id
), segments AS (
    SELECT l.seq_id, d.path, d.geom AS segment FROM lines l, ST_DumpSegments(l.line) AS d
), merged AS (
    SELECT seq_id, ST_LineMerge(ST_Collect(segment ORDER BY path)) AS geom
    FROM segments WHERE ST_Length(segment::geography) <= 75 GROUP BY seq_id
)
UPDATE sequences s
SET geom = CASE WHEN NOT ST_IsEmpty(m.geom) THEN ST_Multi(m.geom) END, bbox = l.bbox,
    min_picture_ts = l.min_ts, max_picture_ts = l.max_ts, nb_pictures = l.nb, updated_at = now()
FROM lines l LEFT JOIN merged m ON m.seq_id = l.seq_id
WHERE s.id = l.seq_id
