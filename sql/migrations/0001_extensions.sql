-- Extensions ops needs. The ones that did not exist before are remembered,
-- so that the rollback drops what we created and leaves what was already there.
CREATE TABLE ops_extensions_created (name text PRIMARY KEY);

INSERT INTO ops_extensions_created (name)
SELECT 'postgis' WHERE NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis');

CREATE EXTENSION IF NOT EXISTS postgis;
