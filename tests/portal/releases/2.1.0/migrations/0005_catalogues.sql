-- 2.1.0: catalogues (replaces the broken 0005 shipped in 2.0.1).
CREATE TABLE catalogues (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    visibility TEXT NOT NULL DEFAULT 'public'
);
INSERT INTO catalogues (id, name) VALUES (1, 'Default');
