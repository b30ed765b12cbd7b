-- Baseline of `ops set-sequences-heading --overwrite`: over every sequence, with window functions and
-- geography azimuths (to the next different position, else from the previous one), the headings chosen into
-- `wanted` (the first statement), then written (the second). headings_rewrite_baseline.sql is the second alone.
CREATE TEMPORARY TABLE wanted ON COMMIT DROP AS
WITH pics AS (
    SELECT sp.seq_id, sp.rank, p.id AS pic_id, p.geom,
           (lag(p.geom) OVER (PARTITION BY sp.seq_id ORDER BY sp.rank) IS DISTINCT FROM p.geom)::int AS starts_group
    FROM sequences_pictures sp
    JOIN pictures p ON p.id = sp.pic_id
    JOIN sequences s ON s.id = sp.seq_id
    WHERE s.status <> 'deleted'
), grouped AS (
    SELECT *, sum(starts_group) OVER (PARTITION BY seq_id ORDER BY rank) AS grp FROM pics
), groups AS (
    SELECT DISTINCT ON (seq_id, grp) seq_id, grp, geom::geography AS pos FROM grouped ORDER BY seq_id, grp
), azimuths AS (
    SELECT seq_id, grp, coalesce(ST_Azimuth(pos, lead(pos) OVER w), ST_Azimuth(lag(pos) OVER w, pos)) AS az
    FROM groups WINDOW w AS (PARTITION BY seq_id ORDER BY grp)
)
SELECT DISTINCT ON (g.pic_id) g.pic_id, (round(degrees(a.az)::numeric) % 360)::int AS heading
FROM grouped g JOIN azimuths a ON a.seq_id = g.seq_id AND a.grp = g.grp
WHERE a.az IS NOT NULL
ORDER BY g.pic_id, g.seq_id;

UPDATE pictures p SET heading = w.heading, heading_computed = true
FROM wanted w
WHERE p.id = w.pic_id AND p.heading IS DISTINCT FROM w.heading
