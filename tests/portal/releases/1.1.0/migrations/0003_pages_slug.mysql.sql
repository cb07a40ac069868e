-- 1.1.0: page slugs and a title index. MySQL/MariaDB: an index on a TEXT
-- column needs a prefix length.
ALTER TABLE pages ADD COLUMN slug TEXT;
CREATE INDEX pages_title_idx ON pages (title(191));
