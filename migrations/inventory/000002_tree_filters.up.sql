-- rsync-style include/exclude rules of a tree, as a JSON array of strings.
ALTER TABLE trees ADD COLUMN filters TEXT NOT NULL DEFAULT '[]';
