-- MUM's size_measurements, exactly as MUM creates it, so MUM's dashboard still draws the
-- sizes Mailstead records: one row per mailbox (`App\Mailbox`), per domain (`App\Domain`)
-- and for the root (both columns NULL) per measurement, `size` in KiB. A database MUM made
-- already has the table; it is kept as it is.
CREATE TABLE IF NOT EXISTS size_measurements (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    measurable_id INT UNSIGNED NULL,
    measurable_type VARCHAR(255) NULL,
    size BIGINT UNSIGNED NOT NULL,
    created_at TIMESTAMP NULL,
    updated_at TIMESTAMP NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A series is read per measurable and time; pruning is by time.
CREATE INDEX size_measurements_measurable_created ON size_measurements (measurable_type, measurable_id, created_at);
CREATE INDEX size_measurements_created ON size_measurements (created_at);
