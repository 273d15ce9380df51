-- Distribution rules of a tree. Only additions with defaults: existing
-- trees keep their meaning.
--
-- sync_latest: for a versioned tree, how many of the newest version
-- directories the origin publishes (0: all). canary_sites: a JSON array
-- of site names that must report the new version COMPLETED (or
-- UP_TO_DATE) before the other sites get it. priority: 'urgent' trees
-- overtake 'normal' ones on a site's link.
ALTER TABLE trees ADD COLUMN sync_latest INTEGER NOT NULL DEFAULT 0 CHECK (sync_latest >= 0);
ALTER TABLE trees ADD COLUMN canary_sites TEXT NOT NULL DEFAULT '[]';
ALTER TABLE trees ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('normal', 'urgent'));
