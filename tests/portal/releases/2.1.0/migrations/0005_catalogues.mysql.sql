-- 2.1.0: catalogues (replaces the broken 0005 shipped in 2.0.1).
-- MySQL/MariaDB commit each DDL statement at once, so the failed 2.0.1
-- migration left its catalogues table behind: start from scratch.
DROP TABLE IF EXISTS catalogues;
CREATE TABLE catalogues (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    visibility VARCHAR(16) NOT NULL DEFAULT 'public'
);
INSERT INTO catalogues (id, name) VALUES (1, 'Default');
