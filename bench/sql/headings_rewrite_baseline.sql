-- The bare rewrite of the rows `ops set-sequences-heading --overwrite` changes, with their new headings: the
-- write alone (headings_baseline.sql's second statement). Its selection, headings_baseline.sql's first
-- statement, is made beforehand into a table `wanted`, untimed (bench.suite).
UPDATE pictures p SET heading = w.heading, heading_computed = true
FROM wanted w
WHERE p.id = w.pic_id AND p.heading IS DISTINCT FROM w.heading
