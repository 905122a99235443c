-- The tables MUM (mailserver-usermanager) creates in MySQL/MariaDB, written from its Laravel
-- migrations as described in mum-schema.md, with Laravel's MySQL column mapping:
-- increments = INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, string = VARCHAR(255) NOT NULL,
-- boolean = TINYINT(1), timestamps() = created_at/updated_at TIMESTAMP NULL.
-- Deliberately not Mailstead's own migrations: the import must work on a database MUM made.

CREATE TABLE migrations (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    migration VARCHAR(255) NOT NULL,
    batch INT NOT NULL
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE domains (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    domain VARCHAR(255) NOT NULL,
    description TEXT NULL,
    quota BIGINT UNSIGNED NULL,
    max_quota BIGINT UNSIGNED NULL,
    max_aliases INT UNSIGNED NULL,
    max_mailboxes INT UNSIGNED NULL,
    homedir VARCHAR(255) NOT NULL,
    active TINYINT(1) NOT NULL DEFAULT 1,
    created_at TIMESTAMP NULL,
    updated_at TIMESTAMP NULL,
    UNIQUE KEY domains_domain_unique (domain),
    UNIQUE KEY domains_homedir_unique (homedir)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE mailboxes (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    local_part VARCHAR(255) NOT NULL,
    password VARCHAR(255) NOT NULL,
    remember_token VARCHAR(100) NULL,
    name VARCHAR(255) NULL,
    domain_id INT UNSIGNED NOT NULL,
    alternative_email VARCHAR(255) NULL,
    quota INT UNSIGNED NULL,
    homedir VARCHAR(255) NOT NULL,
    maildir VARCHAR(255) NOT NULL,
    is_super_admin TINYINT(1) NOT NULL DEFAULT 0,
    send_only TINYINT(1) NOT NULL DEFAULT 0,
    active TINYINT(1) NOT NULL DEFAULT 1,
    created_at TIMESTAMP NULL,
    updated_at TIMESTAMP NULL,
    UNIQUE KEY mailboxes_local_part_domain_id_unique (local_part, domain_id),
    UNIQUE KEY mailboxes_homedir_unique (homedir),
    UNIQUE KEY mailboxes_maildir_unique (maildir),
    CONSTRAINT mailboxes_domain_id_foreign FOREIGN KEY (domain_id) REFERENCES domains (id) ON DELETE CASCADE
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE aliases (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    local_part VARCHAR(255) NOT NULL,
    description VARCHAR(255) NULL,
    domain_id INT UNSIGNED NOT NULL,
    active TINYINT(1) NOT NULL DEFAULT 1,
    deactivate_at TIMESTAMP NULL,
    created_at TIMESTAMP NULL,
    updated_at TIMESTAMP NULL,
    UNIQUE KEY aliases_local_part_domain_id_unique (local_part, domain_id),
    CONSTRAINT aliases_domain_id_foreign FOREIGN KEY (domain_id) REFERENCES domains (id) ON DELETE CASCADE
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE alias_recipients (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    alias_id INT UNSIGNED NOT NULL,
    recipient_address VARCHAR(255) NOT NULL,
    mailbox_id INT UNSIGNED NULL,
    UNIQUE KEY alias_recipients_alias_id_recipient_address_unique (alias_id, recipient_address),
    CONSTRAINT alias_recipients_alias_id_foreign FOREIGN KEY (alias_id) REFERENCES aliases (id) ON DELETE CASCADE,
    CONSTRAINT alias_recipients_mailbox_id_foreign FOREIGN KEY (mailbox_id) REFERENCES mailboxes (id) ON DELETE CASCADE
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE alias_senders (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    mailbox_id INT UNSIGNED NOT NULL,
    alias_id INT UNSIGNED NOT NULL,
    UNIQUE KEY alias_senders_mailbox_id_alias_id_unique (mailbox_id, alias_id),
    CONSTRAINT alias_senders_mailbox_id_foreign FOREIGN KEY (mailbox_id) REFERENCES mailboxes (id) ON DELETE CASCADE,
    CONSTRAINT alias_senders_alias_id_foreign FOREIGN KEY (alias_id) REFERENCES aliases (id) ON DELETE CASCADE
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE tls_policies (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    domain VARCHAR(255) NOT NULL,
    policy ENUM('none', 'may', 'encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure') NOT NULL,
    params TEXT NULL,
    description TEXT NULL,
    active TINYINT(1) NOT NULL DEFAULT 1,
    created_at TIMESTAMP NULL,
    updated_at TIMESTAMP NULL,
    UNIQUE KEY tls_policies_domain_unique (domain)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE domain_admins (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    mailbox_id INT UNSIGNED NOT NULL,
    domain_id INT UNSIGNED NOT NULL,
    created_at TIMESTAMP NULL,
    updated_at TIMESTAMP NULL,
    UNIQUE KEY domain_admins_mailbox_id_domain_id_unique (mailbox_id, domain_id)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE mailbox_admins (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    admin_mailbox_id INT UNSIGNED NOT NULL,
    mailbox_id INT UNSIGNED NOT NULL,
    created_at TIMESTAMP NULL,
    updated_at TIMESTAMP NULL,
    UNIQUE KEY mailbox_admins_admin_mailbox_id_mailbox_id_unique (admin_mailbox_id, mailbox_id)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE size_measurements (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    measurable_id INT UNSIGNED NULL,
    measurable_type VARCHAR(255) NULL,
    size BIGINT UNSIGNED NOT NULL,
    created_at TIMESTAMP NULL,
    updated_at TIMESTAMP NULL
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE password_resets (
    email VARCHAR(255) NOT NULL,
    token VARCHAR(255) NOT NULL,
    created_at TIMESTAMP NULL,
    KEY password_resets_email_index (email)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE jobs (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    queue VARCHAR(255) NOT NULL,
    payload LONGTEXT NOT NULL,
    attempts TINYINT UNSIGNED NOT NULL,
    reserved_at INT UNSIGNED NULL,
    available_at INT UNSIGNED NOT NULL,
    created_at INT UNSIGNED NOT NULL,
    KEY jobs_queue_index (queue)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE failed_jobs (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    connection TEXT NOT NULL,
    queue TEXT NOT NULL,
    payload LONGTEXT NOT NULL,
    exception LONGTEXT NOT NULL,
    failed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
