-- Transports and DKIM keys; see the MySQL migration of the same number for the why.
CREATE TABLE transports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT NOT NULL UNIQUE,
    transport TEXT NOT NULL,
    description TEXT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NULL,
    updated_at TEXT NULL
);

CREATE TABLE dkim_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT NOT NULL,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL CHECK (algorithm IN ('ed25519', 'rsa')),
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NULL,
    updated_at TEXT NULL,
    UNIQUE (domain, selector)
);

CREATE TRIGGER mailstead_transports_insert AFTER INSERT ON transports
BEGIN
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;
END;

CREATE TRIGGER mailstead_transports_update AFTER UPDATE ON transports
BEGIN
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;
END;

CREATE TRIGGER mailstead_transports_delete AFTER DELETE ON transports
BEGIN
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;
END;

CREATE TRIGGER mailstead_dkim_keys_insert AFTER INSERT ON dkim_keys
BEGIN
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;
END;

CREATE TRIGGER mailstead_dkim_keys_update AFTER UPDATE ON dkim_keys
BEGIN
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;
END;

CREATE TRIGGER mailstead_dkim_keys_delete AFTER DELETE ON dkim_keys
BEGIN
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;
END;
