-- 1.0.0: portal users (developers and admins). MySQL/MariaDB: a unique key
-- needs a bounded type.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email VARCHAR(255) NOT NULL UNIQUE,
    display_name TEXT,
    created_at TEXT
);
