-- MUM's tables and columns on SQLite: timestamps are TEXT in UTC ('YYYY-MM-DD HH:MM:SS') and
-- flags INTEGER 0/1, so that MUM-style queries written `active = 1` run unchanged.
CREATE TABLE domains (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT NOT NULL UNIQUE,
    description TEXT NULL,
    quota INTEGER NULL,
    max_quota INTEGER NULL,
    max_aliases INTEGER NULL,
    max_mailboxes INTEGER NULL,
    homedir TEXT NOT NULL UNIQUE,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NULL,
    updated_at TEXT NULL
);

CREATE TABLE mailboxes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    local_part TEXT NOT NULL,
    password TEXT NOT NULL,
    remember_token TEXT NULL,
    name TEXT NULL,
    domain_id INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    alternative_email TEXT NULL,
    quota INTEGER NULL,
    homedir TEXT NOT NULL UNIQUE,
    maildir TEXT NOT NULL UNIQUE,
    is_super_admin INTEGER NOT NULL DEFAULT 0,
    send_only INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NULL,
    updated_at TEXT NULL,
    UNIQUE (local_part, domain_id)
);

CREATE TABLE aliases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    local_part TEXT NOT NULL,
    description TEXT NULL,
    domain_id INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    active INTEGER NOT NULL DEFAULT 1,
    deactivate_at TEXT NULL,
    created_at TEXT NULL,
    updated_at TEXT NULL,
    UNIQUE (local_part, domain_id)
);

CREATE TABLE alias_recipients (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alias_id INTEGER NOT NULL REFERENCES aliases (id) ON DELETE CASCADE,
    recipient_address TEXT NOT NULL,
    mailbox_id INTEGER NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    UNIQUE (alias_id, recipient_address)
);

CREATE TABLE alias_senders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    alias_id INTEGER NOT NULL REFERENCES aliases (id) ON DELETE CASCADE,
    UNIQUE (mailbox_id, alias_id)
);

CREATE TABLE tls_policies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT NOT NULL UNIQUE,
    policy TEXT NOT NULL
        CHECK (policy IN ('none', 'may', 'encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure')),
    params TEXT NULL,
    description TEXT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NULL,
    updated_at TEXT NULL
);

CREATE TABLE domain_admins (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    domain_id INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    created_at TEXT NULL,
    updated_at TEXT NULL,
    UNIQUE (mailbox_id, domain_id)
);

CREATE TABLE mailbox_admins (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    created_at TEXT NULL,
    updated_at TEXT NULL,
    UNIQUE (admin_mailbox_id, mailbox_id)
);
