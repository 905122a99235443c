-- API tokens, the audit log's source, paging indexes; see the MySQL migration of the same
-- number for the why.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NULL,
    expires_at TEXT NULL,
    last_used_at TEXT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);

ALTER TABLE audit_log ADD COLUMN source TEXT NULL;

CREATE INDEX mailboxes_domain_local_part_index ON mailboxes (domain_id, local_part);
CREATE INDEX aliases_domain_local_part_index ON aliases (domain_id, local_part);
CREATE INDEX mailboxes_created_at_index ON mailboxes (created_at);
