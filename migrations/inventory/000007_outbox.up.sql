-- The outbox: the events and commands a change announces, written in the
-- transaction of the change and published to NATS after it commits (then
-- deleted). A change is never recorded without its announcement, nor
-- announced without being recorded. id is a UUIDv7, so rows are published
-- in the order they were made; msg_id is the Nats-Msg-Id, so publishing a
-- row twice (a crash between publish and delete) stores it once. attempts
-- and last_error count failed publications, for the operator.
CREATE TABLE outbox (
    id           TEXT      NOT NULL PRIMARY KEY,
    subject      TEXT      NOT NULL,
    msg_id       TEXT      NOT NULL,
    content_type TEXT      NOT NULL DEFAULT '',
    body         TEXT      NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    attempts     BIGINT    NOT NULL DEFAULT 0,
    last_error   TEXT      NOT NULL DEFAULT ''
);
