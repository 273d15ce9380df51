ALTER TABLE sites DROP COLUMN agent_since;
ALTER TABLE sites DROP COLUMN agent_reason;
ALTER TABLE sites DROP COLUMN agent_state;
