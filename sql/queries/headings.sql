-- Headings from the movement path: for each picture, the geodesic azimuth (WGS84, PostGIS geography) to the
-- next picture in rank order at a different position; for the last ones, from the previous different
-- position. Consecutive pictures at one position form a group sharing its azimuth. Plus the relative heading
-- (the camera's direction against the movement): %(value)s when the operator gives one; else, as Panoramax's
-- update_headings does, the sequence's metadata relative_heading, else its upload set's relative_heading,
-- else 0. Which pictures: every one with %(overwrite)s, or when no value is given and the owner set a relative
-- heading (Panoramax recomputes them all then); else only missing headings (NULL, previously computed, and
-- without a value 0, which many cameras write for "unknown"). A heading set by hand survives otherwise.
-- (Panoramax floors a planar azimuth; ops rounds the geodesic one, the true bearing: they differ by a degree
-- or two.) A dry run reads `preview`; a real run `apply`.

-- name: changes
-- The pictures whose heading would change (pic_id, seq_id, heading), and one row (pic_id NULL) per sequence
-- of %(seq_ids)s without any azimuth (one picture, or one position).
WITH relative AS MATERIALIZED (
    SELECT s.id AS seq_id, coalesce(
               %(value)s::int,
               CASE WHEN s.metadata ->> 'relative_heading' ~ '^\s*-?[0-9]+\s*$'
                    THEN (s.metadata ->> 'relative_heading')::int END,
               CASE WHEN {u_relative_heading} ~ '^\s*-?[0-9]+\s*$' THEN ({u_relative_heading})::int END,
               0) AS value,
           %(overwrite)s OR (%(value)s::int IS NULL AND coalesce(s.metadata ->> 'relative_heading',
                                                                   {u_relative_heading}) IS NOT NULL)
               AS every_picture,
           %(value)s::int IS NULL AS zero_is_missing
    FROM sequences s LEFT JOIN upload_sets u ON u.id = {s_upload_set_id}
    WHERE s.id = ANY(%(seq_ids)s::uuid[])
), pics AS (
    SELECT sp.seq_id, sp.rank, p.id AS pic_id, p.geom, p.heading, p.heading_computed,
           (lag(p.geom) OVER (PARTITION BY sp.seq_id ORDER BY sp.rank) IS DISTINCT FROM p.geom)::int AS starts_group
    FROM sequences_pictures sp
    JOIN pictures p ON p.id = sp.pic_id
    WHERE sp.seq_id = ANY(%(seq_ids)s::uuid[])
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
    SELECT DISTINCT ON (g.pic_id) g.pic_id, g.seq_id, g.heading AS old_heading,
           ((round(degrees(a.az)::numeric + r.value) %% 360 + 360) %% 360)::int AS heading
    FROM grouped g
    JOIN azimuths a ON a.seq_id = g.seq_id AND a.grp = g.grp
    JOIN relative r ON r.seq_id = g.seq_id
    WHERE a.az IS NOT NULL
      AND (r.every_picture OR g.heading IS NULL OR g.heading_computed OR (r.zero_is_missing AND g.heading = 0))
    ORDER BY g.pic_id, g.seq_id
)
SELECT pic_id, seq_id, heading FROM wanted WHERE old_heading IS DISTINCT FROM heading
UNION ALL
SELECT NULL, ids.id, NULL FROM unnest(%(seq_ids)s::uuid[]) AS ids (id)
WHERE NOT EXISTS (SELECT 1 FROM azimuths a WHERE a.seq_id = ids.id AND a.az IS NOT NULL)

-- name: preview
-- Returns: the sequences that would change, pictures that would be updated, sequences without any azimuth.
WITH changes AS ({changes})
SELECT ARRAY(SELECT DISTINCT seq_id FROM changes WHERE pic_id IS NOT NULL ORDER BY 1),
       (SELECT count(*) FROM changes WHERE pic_id IS NOT NULL),
       (SELECT count(*) FROM changes WHERE pic_id IS NULL)

-- name: apply
-- Writes the changed headings only. Returns: sequences changed, pictures updated, sequences without azimuth.
WITH changes AS ({changes}), updated AS (
    UPDATE pictures p
    SET heading = c.heading, heading_computed = true
    FROM changes c
    WHERE c.pic_id IS NOT NULL AND p.id = c.pic_id
    RETURNING c.seq_id
)
SELECT ARRAY(SELECT DISTINCT seq_id FROM updated ORDER BY 1),
       (SELECT count(*) FROM updated),
       (SELECT count(*) FROM changes WHERE pic_id IS NULL)
