-- Freshness alarms raised and not cleared: one row per subscription whose
-- site is further behind than its tree's allowed lag. The inventory raises
-- and clears them (alarm.raised and alarm.cleared events, through the
-- outbox in the same transaction); the row makes each happen once.
CREATE TABLE alarms (
    site      TEXT      NOT NULL,
    tree      TEXT      NOT NULL,
    raised_at TIMESTAMP NOT NULL,
    PRIMARY KEY (site, tree)
);
