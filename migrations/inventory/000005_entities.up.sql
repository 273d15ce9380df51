-- The inventory's data model, completed. Only additions: every new column
-- has a default, so existing rows stay valid and keep their meaning.

-- Trees. type: simple (one served version), versioned (sites keep `keep`
-- versions) or snapshot (each version a read-only snapshot). keep (from
-- 000001) is the retention: versions kept at sites. max_deletions: a sync
-- that would delete more entries than this at a site is refused (0: no
-- guard). protected_paths: rsync-style patterns never deleted, as a JSON
-- array of strings. enabled: a disabled tree is not scheduled.
-- allowed_lag_seconds: how far behind a site may be before the freshness
-- alarm fires.
ALTER TABLE trees ADD COLUMN type TEXT NOT NULL DEFAULT 'simple' CHECK (type IN ('simple', 'versioned', 'snapshot'));
ALTER TABLE trees ADD COLUMN max_deletions BIGINT NOT NULL DEFAULT 0 CHECK (max_deletions >= 0);
ALTER TABLE trees ADD COLUMN protected_paths TEXT NOT NULL DEFAULT '[]';
ALTER TABLE trees ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE trees ADD COLUMN allowed_lag_seconds BIGINT NOT NULL DEFAULT 86400 CHECK (allowed_lag_seconds > 0);

-- Sites. bandwidth_limit in bytes/s (0: unlimited); bandwidth_windows a
-- JSON array of "DAYS HH:MM-HH:MM"; agent the site-agent's NATS user or
-- public key; last_heartbeat the time of the newest event seen from the
-- site's agent (NULL: never).
ALTER TABLE sites ADD COLUMN location TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN wan_link TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN bandwidth_limit BIGINT NOT NULL DEFAULT 0 CHECK (bandwidth_limit >= 0);
ALTER TABLE sites ADD COLUMN bandwidth_windows TEXT NOT NULL DEFAULT '[]';
ALTER TABLE sites ADD COLUMN agent TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN last_heartbeat TIMESTAMP NULL;

-- Delta packs (tree, from, to) as the delta-cache announced them; from ''
-- is the pack from an empty tree. computed_at and computed_by are set by
-- delta.computed (NULL and '' for a pack only seen in delta.ready). How
-- often a pack was served is counted from the runs that applied it.
CREATE TABLE deltas (
    tree          TEXT      NOT NULL REFERENCES trees (name),
    from_version  TEXT      NOT NULL,
    to_version    TEXT      NOT NULL,
    pack          TEXT      NOT NULL DEFAULT '',
    size          BIGINT    NOT NULL DEFAULT 0,
    computed_at   TIMESTAMP NULL,
    computed_by   TEXT      NOT NULL DEFAULT '',
    compute_ms    BIGINT    NOT NULL DEFAULT 0,
    first_seen_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tree, from_version, to_version)
);

CREATE INDEX deltas_first_seen ON deltas (first_seen_at);
CREATE INDEX runs_delta ON runs (tree, from_version, to_version);

-- Who changed what, when: one row per create, update, delete, trigger,
-- pause or resume, written in the transaction of the change. id is a
-- UUIDv7, so ids of one instant sort in the order they were made.
CREATE TABLE audit_log (
    id      TEXT      NOT NULL PRIMARY KEY,
    at      TIMESTAMP NOT NULL,
    actor   TEXT      NOT NULL,
    action  TEXT      NOT NULL,
    entity  TEXT      NOT NULL,
    name    TEXT      NOT NULL,
    summary TEXT      NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_log_at ON audit_log (at);

-- Events the inventory could not apply (about a tree it does not know),
-- kept instead of dropped. event_id is also in processed_events.
CREATE TABLE problems (
    event_id    TEXT      NOT NULL PRIMARY KEY,
    type        TEXT      NOT NULL,
    subject     TEXT      NOT NULL DEFAULT '',
    reason      TEXT      NOT NULL,
    received_at TIMESTAMP NOT NULL
);

CREATE INDEX problems_received ON problems (received_at);
