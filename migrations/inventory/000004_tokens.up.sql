-- The bearer tokens of the REST API. Only the SHA-256 of a token is kept
-- (hash, lower-case hex); id is the short random part printed inside the
-- token and in listings, never a secret. role is viewer, operator, admin or
-- agent; an agent token names its site (no foreign key: a token may be made
-- before its site is declared). A revoked token keeps its row, so listings
-- show when it stopped working.
CREATE TABLE api_tokens (
    id         TEXT      NOT NULL PRIMARY KEY,
    hash       TEXT      NOT NULL UNIQUE,
    name       TEXT      NOT NULL DEFAULT '',
    role       TEXT      NOT NULL CHECK (role IN ('viewer', 'operator', 'admin', 'agent')),
    site       TEXT      NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP NULL,
    CHECK ((role = 'agent') = (site <> ''))
);
