-- Rows still in the outbox are announcements not yet published; they are
-- lost with the table.
DROP TABLE outbox;
