-- The public keys whose signatures on packs site-agents accept (ed25519,
-- PKIX PEM). id is the key's fingerprint: the lower-case hex of the first 16
-- bytes of the SHA-256 of the raw 32-byte key (bus.SigningKeyID), so the
-- same key always gets the same id. A revoked key keeps its row: it cannot
-- be added back, and the record shows when it stopped being trusted.
CREATE TABLE signing_keys (
    id         TEXT      NOT NULL PRIMARY KEY,
    name       TEXT      NOT NULL,
    public_key TEXT      NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP NULL
);

-- A name means one key among those still trusted.
CREATE UNIQUE INDEX signing_keys_active_name ON signing_keys (name) WHERE revoked_at IS NULL;
