-- What a server needs and MUM lacks; see the MySQL migration of the same number for the why.
ALTER TABLE domains ADD COLUMN quota_bytes INTEGER NULL;
ALTER TABLE mailboxes ADD COLUMN quota_bytes INTEGER NULL;

CREATE TABLE alias_domains (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT NOT NULL UNIQUE,
    target_domain_id INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    description TEXT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NULL,
    updated_at TEXT NULL
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    details TEXT NULL
);
CREATE INDEX audit_log_created_at_index ON audit_log (created_at);

CREATE TABLE directory_state (
    id INTEGER PRIMARY KEY,
    change_serial INTEGER NOT NULL
);
INSERT INTO directory_state (id, change_serial) VALUES (1, 0);
