-- What a server needs and MUM lacks, in new columns and tables that MUM's queries never read.

-- Quotas finer than MUM's whole GiB. When set, it is the limit in bytes and MUM's `quota`
-- column holds the same limit rounded up to whole GiB, so Dovecot's user_query stays near it.
ALTER TABLE domains ADD COLUMN quota_bytes BIGINT UNSIGNED NULL;
ALTER TABLE mailboxes ADD COLUMN quota_bytes BIGINT UNSIGNED NULL;

-- example.net -> example.com: every address of the alias domain resolves as the same local
-- part in the target domain.
CREATE TABLE alias_domains (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    domain VARCHAR(255) NOT NULL,
    target_domain_id INT UNSIGNED NOT NULL,
    description TEXT NULL,
    active TINYINT(1) NOT NULL DEFAULT 1,
    created_at TIMESTAMP NULL,
    updated_at TIMESTAMP NULL,
    UNIQUE KEY alias_domains_domain_unique (domain),
    CONSTRAINT alias_domains_target_domain_id_foreign FOREIGN KEY (target_domain_id) REFERENCES domains (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every change made through Mailstead: who, what, when.
CREATE TABLE audit_log (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    created_at TIMESTAMP NULL,
    actor VARCHAR(255) NOT NULL,
    action VARCHAR(64) NOT NULL,
    subject VARCHAR(255) NOT NULL,
    details TEXT NULL,
    KEY audit_log_created_at_index (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row. Every write through Mailstead bumps change_serial in the same transaction; running
-- servers poll it and drop their caches when it moves.
CREATE TABLE directory_state (
    id INT UNSIGNED NOT NULL PRIMARY KEY,
    change_serial BIGINT NOT NULL
) ENGINE=InnoDB;
INSERT INTO directory_state (id, change_serial) VALUES (1, 0);
