-- What sending mail needs: where mail for a domain goes instead of its MX, and the keys that
-- sign what the hosted domains send. Mailstead's tables, not MUM's: MUM's queries never read
-- them.

-- Postfix's transport_maps: `SELECT transport FROM transports WHERE domain = '%s' AND active = 1`
-- works as a Postfix map. The value is a next hop in Postfix's syntax (smtp:[host]:port,
-- smtp:host, lmtp:host:port), stored as Mailstead normalises it. The domain need not be hosted.
CREATE TABLE transports (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    domain VARCHAR(255) NOT NULL,
    transport VARCHAR(255) NOT NULL,
    description TEXT NULL,
    active TINYINT(1) NOT NULL DEFAULT 1,
    created_at TIMESTAMP NULL,
    updated_at TIMESTAMP NULL,
    UNIQUE KEY transports_domain_unique (domain)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- DKIM keys of hosted domains, as OpenDKIM reads them: the private key in PEM (PKCS#8 for
-- ed25519, PKCS#1 for rsa) and the base64 `p=` value published in DNS. A domain may have
-- several (a new selector is published before the old one is retired); the newest active one
-- signs.
CREATE TABLE dkim_keys (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    domain VARCHAR(255) NOT NULL,
    selector VARCHAR(255) NOT NULL,
    algorithm ENUM('ed25519', 'rsa') NOT NULL,
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    active TINYINT(1) NOT NULL DEFAULT 1,
    created_at TIMESTAMP NULL,
    updated_at TIMESTAMP NULL,
    UNIQUE KEY dkim_keys_domain_selector_unique (domain, selector)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The change counter, as in 0004, so that running servers drop cached answers.
CREATE TRIGGER mailstead_transports_insert AFTER INSERT ON transports FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_transports_update AFTER UPDATE ON transports FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_transports_delete AFTER DELETE ON transports FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_dkim_keys_insert AFTER INSERT ON dkim_keys FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_dkim_keys_update AFTER UPDATE ON dkim_keys FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_dkim_keys_delete AFTER DELETE ON dkim_keys FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;
