-- Inventory schema, portable between PostgreSQL and SQLite.
-- Timestamps are written by the application in UTC.

CREATE TABLE sites (
    name        TEXT      NOT NULL PRIMARY KEY,
    description TEXT      NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE trees (
    name        TEXT      NOT NULL PRIMARY KEY,
    origin_site TEXT      NOT NULL REFERENCES sites (name),
    source      TEXT      NOT NULL,
    schedule    TEXT      NOT NULL DEFAULT '',
    keep        INTEGER   NOT NULL CHECK (keep BETWEEN 1 AND 100),
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE subscriptions (
    site       TEXT      NOT NULL REFERENCES sites (name),
    tree       TEXT      NOT NULL REFERENCES trees (name),
    paused     BOOLEAN   NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (site, tree)
);

CREATE INDEX subscriptions_tree ON subscriptions (tree);

-- A published snapshot of a tree; root is the hex BLAKE3 Merkle root.
CREATE TABLE versions (
    tree         TEXT      NOT NULL REFERENCES trees (name),
    root         TEXT      NOT NULL,
    site         TEXT      NOT NULL,
    files        BIGINT    NOT NULL DEFAULT 0,
    bytes        BIGINT    NOT NULL DEFAULT 0,
    published_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tree, root)
);

CREATE INDEX versions_tree_published ON versions (tree, published_at);

-- One site moving one tree to a version, as told by sync.started and
-- sync.finished events. Runs carry no foreign keys: they are a record of
-- what the bus said, kept even if it names something the inventory lacks.
CREATE TABLE runs (
    id           TEXT      NOT NULL PRIMARY KEY,
    trigger_id   TEXT      NOT NULL DEFAULT '',
    site         TEXT      NOT NULL,
    tree         TEXT      NOT NULL,
    kind         TEXT      NOT NULL DEFAULT '',
    from_version TEXT      NOT NULL DEFAULT '',
    to_version   TEXT      NOT NULL DEFAULT '',
    state        TEXT      NOT NULL CHECK (state IN ('RUNNING', 'DONE')),
    result       TEXT      NOT NULL DEFAULT '',
    error        TEXT      NOT NULL DEFAULT '',
    files        BIGINT    NOT NULL DEFAULT 0,
    bytes        BIGINT    NOT NULL DEFAULT 0,
    duration_ms  BIGINT    NOT NULL DEFAULT 0,
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP NULL
);

CREATE INDEX runs_tree_started ON runs (tree, started_at);
CREATE INDEX runs_site_started ON runs (site, started_at);
CREATE INDEX runs_started ON runs (started_at);

-- The version of a tree that a site serves.
CREATE TABLE site_versions (
    site       TEXT      NOT NULL,
    tree       TEXT      NOT NULL,
    root       TEXT      NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (site, tree)
);

-- Ids of the bus events already recorded, so that a redelivered event
-- changes nothing.
CREATE TABLE processed_events (
    id          TEXT      NOT NULL PRIMARY KEY,
    received_at TIMESTAMP NOT NULL
);
