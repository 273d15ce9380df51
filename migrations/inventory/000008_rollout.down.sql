ALTER TABLE trees DROP COLUMN priority;
ALTER TABLE trees DROP COLUMN canary_sites;
ALTER TABLE trees DROP COLUMN sync_latest;
