-- 2.0.0: API products published on pages, and user roles. MySQL: a TEXT
-- column cannot have a literal default.
CREATE TABLE api_products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    page_id INTEGER REFERENCES pages (id)
);
ALTER TABLE users ADD COLUMN role VARCHAR(32) NOT NULL DEFAULT 'developer';
