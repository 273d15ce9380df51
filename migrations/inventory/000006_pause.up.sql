-- Pausing a site or a tree is a state of the site or tree itself, so that
-- it also holds for subscriptions made while it lasts: the scheduler sends
-- a paused site no commands and drops the triggers of a paused tree. The
-- pause and resume routes still set the paused flag of the existing
-- subscriptions too, as before.
ALTER TABLE sites ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE trees ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;
