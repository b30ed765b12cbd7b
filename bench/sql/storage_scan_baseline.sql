-- Baseline of `ops storage check` over a storage holding no file: the same rows read once, in id order,
-- through one server-side cursor (no paging, no file system).
SELECT p.id, p.status::text, p.original_content_md5 FROM pictures p ORDER BY p.id
