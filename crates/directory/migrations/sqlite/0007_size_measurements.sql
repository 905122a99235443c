-- MUM's size_measurements (MUM's Laravel migration, in SQLite's types), so MUM's dashboard
-- still draws the sizes Mailstead records: one row per mailbox (`App\Mailbox`), per domain
-- (`App\Domain`) and for the root (both columns NULL) per measurement, `size` in KiB.
CREATE TABLE IF NOT EXISTS size_measurements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    measurable_id INTEGER NULL,
    measurable_type TEXT NULL,
    size INTEGER NOT NULL,
    created_at TEXT NULL,
    updated_at TEXT NULL
);

-- A series is read per measurable and time; pruning is by time.
CREATE INDEX IF NOT EXISTS size_measurements_measurable_created ON size_measurements (measurable_type, measurable_id, created_at);
CREATE INDEX IF NOT EXISTS size_measurements_created ON size_measurements (created_at);
