-- 2.0.0: API products published on pages, and user roles.
CREATE TABLE api_products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    page_id INTEGER REFERENCES pages (id)
);
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'developer';
