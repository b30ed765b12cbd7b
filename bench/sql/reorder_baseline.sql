-- Baseline of `ops sequences reorder`: the least hand-written SQL producing the same ranks and derived fields,
-- over every sequence in one transaction, no batching, no function call per sequence: the geometry is
-- computed set-based by Panoramax's rule (the line in rank order, its segments, those of 75 m or less merged),
-- which bench.suite checks byte-identical to compute_sequence_geom on the instance. It cannot be one
-- statement: (seq_id, rank) is a non-deferrable primary key, and reassigning ranks in one UPDATE collides
-- with the old ranks. So: new ranks negated, then flipped, then the derived fields of the moved sequences.
-- Its ranking rule, the `ordered` placeholder, is composed by bench.baseline: capture time
-- (reorder_capture_order.sql) on ops's own database; where users chose orders through Panoramax (a
-- collection's sort, an upload set's sort_method), ops's own `ordered` of sql/queries/reorder_ranks.sql,
-- the choices read as ops reads them (the name reorder_chosen_baseline), so both sides give the same ranks
-- (bench.suite checks them equal). The rule is the specification; the pair compares the work around it.
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
