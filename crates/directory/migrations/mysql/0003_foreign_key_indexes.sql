-- InnoDB already indexes every foreign-key column (see the PostgreSQL and SQLite migrations of
-- the same number). This statement only keeps schema versions equal across the backends.
SELECT 1;
