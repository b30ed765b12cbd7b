-- `ops storage check`: the pictures, a page at a time by id (keyset paging: memory stays flat), with
-- what the check needs; `seq_ids` NULL means every picture.

-- name: page
SELECT p.id, p.status::text, p.original_content_md5
FROM pictures p
WHERE p.id > %(after)s
  AND (%(seq_ids)s::uuid[] IS NULL
       OR p.id IN (SELECT sp.pic_id FROM sequences_pictures sp WHERE sp.seq_id = ANY(%(seq_ids)s::uuid[])))
ORDER BY p.id
LIMIT %(page)s;

-- name: count
SELECT count(*) FROM pictures p
WHERE %(seq_ids)s::uuid[] IS NULL
   OR p.id IN (SELECT sp.pic_id FROM sequences_pictures sp WHERE sp.seq_id = ANY(%(seq_ids)s::uuid[]));

-- name: ready_sample
-- A few pictures ready to be served: any of their originals found where the layout says proves the storage
-- location before a deleting command deletes anything (the first rows met: no sort, no scan of the table).
SELECT id FROM pictures WHERE status = 'ready' LIMIT %(n)s

-- name: ready_pictures_exist
-- Whether any picture is ready to be served (ops health: an empty originals area then means no volume).
SELECT EXISTS (SELECT 1 FROM pictures WHERE status = 'ready')
