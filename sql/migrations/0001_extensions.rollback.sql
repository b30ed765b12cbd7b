DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM ops_extensions_created WHERE name = 'postgis') THEN
        DROP EXTENSION IF EXISTS postgis;
    END IF;
END
$$;

DROP TABLE ops_extensions_created;
