-- 1.0.0: content pages.
CREATE TABLE pages (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL
);
