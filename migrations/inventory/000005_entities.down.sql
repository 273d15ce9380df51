DROP TABLE IF EXISTS problems;
DROP TABLE IF EXISTS audit_log;
DROP INDEX IF EXISTS runs_delta;
DROP TABLE IF EXISTS deltas;

ALTER TABLE sites DROP COLUMN last_heartbeat;
ALTER TABLE sites DROP COLUMN agent;
ALTER TABLE sites DROP COLUMN bandwidth_windows;
ALTER TABLE sites DROP COLUMN bandwidth_limit;
ALTER TABLE sites DROP COLUMN wan_link;
ALTER TABLE sites DROP COLUMN location;

ALTER TABLE trees DROP COLUMN allowed_lag_seconds;
ALTER TABLE trees DROP COLUMN enabled;
ALTER TABLE trees DROP COLUMN protected_paths;
ALTER TABLE trees DROP COLUMN max_deletions;
ALTER TABLE trees DROP COLUMN type;
