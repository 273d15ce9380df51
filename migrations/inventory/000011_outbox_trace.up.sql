-- The trace context (W3C traceparent and tracestate) of the change that
-- wrote each outbox row: the relay publishes the row within that trace,
-- so a sync asked for over the REST API is one trace from the request to
-- the last site. Empty for rows made outside a trace (and before this
-- migration).
ALTER TABLE outbox ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN tracestate TEXT NOT NULL DEFAULT '';
