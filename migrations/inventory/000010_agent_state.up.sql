-- The state of each site's agent as the inventory announced it: online,
-- offline ('' while never heard from), why it is offline ('stopped' by
-- the agent, 'heartbeat lost' when the inventory found it silent), and
-- since when. The inventory announces a change of it (agent.online,
-- agent.offline, through the outbox in the same transaction) once,
-- however often it checks and however many inventories run; kept here,
-- a restart does not announce it again.
ALTER TABLE sites ADD COLUMN agent_state TEXT NOT NULL DEFAULT '' CHECK (agent_state IN ('', 'online', 'offline'));
ALTER TABLE sites ADD COLUMN agent_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN agent_since TIMESTAMP;
