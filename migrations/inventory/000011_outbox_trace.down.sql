ALTER TABLE outbox DROP COLUMN tracestate;
ALTER TABLE outbox DROP COLUMN traceparent;
