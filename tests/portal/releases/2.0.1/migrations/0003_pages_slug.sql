-- 1.1.0: page slugs and a title index.
ALTER TABLE pages ADD COLUMN slug TEXT;
CREATE INDEX pages_title_idx ON pages (title);
