-- Headings from the movement path: for each picture, the geodesic azimuth (WGS84, PostGIS geography) to the
-- next picture in rank order at a different position; for the last ones, from the previous different
-- position. Consecutive pictures at one position form a group sharing its azimuth.
-- Without the overwrite flag, only NULL or previously computed headings change. Rows whose heading would not
-- change are not written. Returns: sequences changed, pictures updated, sequences without any azimuth.
WITH pics AS (
    SELECT sp.seq_id, sp.rank, p.id AS pic_id, p.geom, p.heading, p.heading_computed,
           (lag(p.geom) OVER (PARTITION BY sp.seq_id ORDER BY sp.rank) IS DISTINCT FROM p.geom)::int AS starts_group
    FROM sequences_pictures sp
    JOIN pictures p ON p.id = sp.pic_id
    WHERE sp.seq_id = ANY(%(seq_ids)s)
), grouped AS (
    SELECT *, sum(starts_group) OVER (PARTITION BY seq_id ORDER BY rank) AS grp
    FROM pics
), groups AS (
    SELECT DISTINCT ON (seq_id, grp) seq_id, grp, geom::geography AS pos
    FROM grouped
    ORDER BY seq_id, grp
), azimuths AS (
    SELECT seq_id, grp,
           coalesce(
               ST_Azimuth(pos, lead(pos) OVER w),
               ST_Azimuth(lag(pos) OVER w, pos)
           ) AS az
    FROM groups
    WINDOW w AS (PARTITION BY seq_id ORDER BY grp)
), wanted AS (
    SELECT DISTINCT ON (g.pic_id) g.pic_id, g.seq_id,
           ((round(degrees(a.az)::numeric + %(value)s) %% 360 + 360) %% 360)::int AS heading
    FROM grouped g
    JOIN azimuths a ON a.seq_id = g.seq_id AND a.grp = g.grp
    WHERE a.az IS NOT NULL
      AND (%(overwrite)s OR g.heading IS NULL OR g.heading_computed)
    ORDER BY g.pic_id, g.seq_id
), updated AS (
    UPDATE pictures p
    SET heading = w.heading, heading_computed = true
    FROM wanted w
    WHERE p.id = w.pic_id AND p.heading IS DISTINCT FROM w.heading
    RETURNING w.seq_id
)
SELECT
    (SELECT count(DISTINCT seq_id) FROM updated) AS sequences_changed,
    (SELECT count(*) FROM updated) AS pictures_updated,
    (SELECT count(*) FROM unnest(%(seq_ids)s::uuid[]) AS ids (id)
     WHERE NOT EXISTS (SELECT 1 FROM azimuths a WHERE a.seq_id = ids.id AND a.az IS NOT NULL)) AS without_azimuth;
