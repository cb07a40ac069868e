-- 2.0.1: catalogues.
-- BROKEN ON PURPOSE: the first statement succeeds, the second is invalid SQL,
-- so the whole migration (one transaction) must roll back and the portal
-- must exit with "failed to migrate database". On MySQL/MariaDB the CREATE
-- TABLE commits at once and the table stays; the schema version stays at 4
-- all the same.
CREATE TABLE catalogues (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
INSERT INTO catalogues (id, name) VALUSE (1, 'Default');
