-- What the HTTP API needs: tokens, where a change came from, and indexes for paging lists.
-- Mailstead's own tables and columns; MUM's queries never read them.

-- API tokens. A token is 256 random bits shown once at creation; only its SHA-256 is kept
-- (hex). A slow password hash would add nothing: a random 256-bit secret cannot be guessed
-- from its digest, and the digest is what a request is looked up by. `scope` is `super`,
-- `domain:<domain>` or `user:<address>`.
CREATE TABLE api_tokens (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    token_hash CHAR(64) NOT NULL,
    scope VARCHAR(512) NOT NULL,
    created_by VARCHAR(255) NOT NULL,
    created_at TIMESTAMP NULL,
    expires_at TIMESTAMP NULL,
    last_used_at TIMESTAMP NULL,
    revoked TINYINT(1) NOT NULL DEFAULT 0,
    UNIQUE KEY api_tokens_token_hash_unique (token_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Where a change came from: the client's address and how it authenticated
-- (`http 203.0.113.7 session`, `http ::1 token 3`), or `cli` on this host.
ALTER TABLE audit_log ADD COLUMN source VARCHAR(255) NULL;

-- Lists page in SQL: mailboxes and aliases in a domain in local-part order, newest first.
CREATE INDEX mailboxes_domain_local_part_index ON mailboxes (domain_id, local_part);
CREATE INDEX aliases_domain_local_part_index ON aliases (domain_id, local_part);
CREATE INDEX mailboxes_created_at_index ON mailboxes (created_at);
