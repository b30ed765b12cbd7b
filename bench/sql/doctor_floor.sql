-- The floor of `ops doctor`: as many plain sequential scans of pictures and sequences_pictures as its checks
-- make (SEQ001, SEQ002 and SEQ005 read both; SEQ003 reads sequences_pictures; PIC004 reads pictures), each a
-- count(*): what reading those rows costs at the least.
SET enable_indexscan = off;
SET enable_indexonlyscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM pictures;
SELECT count(*) FROM pictures;
SELECT count(*) FROM pictures;
SELECT count(*) FROM pictures;
SELECT count(*) FROM sequences_pictures;
SELECT count(*) FROM sequences_pictures;
SELECT count(*) FROM sequences_pictures;
SELECT count(*) FROM sequences_pictures
