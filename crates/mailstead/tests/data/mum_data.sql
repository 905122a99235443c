-- Rows as MUM writes them. Passwords are bare bcrypt (`doveadm pw -s BLF-CRYPT -r 10` with
-- the {BLF-CRYPT} prefix stripped, as PHP's Hash::make stores them); the password of every
-- mailbox here is mum-secret-1.
-- mum.example's max_quota (1 GiB) is below jane's quota (3 GiB): MUM enforces no max_quota,
-- so the import must still copy it.

-- TIMESTAMP literals are read in the session's time zone; make them UTC.
SET time_zone = '+00:00';

INSERT INTO migrations (migration, batch) VALUES
    ('2014_10_12_000000_create_mailboxes_table', 1),
    ('2021_01_28_124237_drop_unused_tables', 2);

INSERT INTO domains (id, domain, description, quota, max_quota, max_aliases, max_mailboxes, homedir, active, created_at, updated_at) VALUES
    (1, 'mum.example', 'Moved from MUM', 2, 1, 10, 5, '/srv/mail/mailboxes/mum.example', 1, NOW(), NOW()),
    (2, 'old.example', NULL, NULL, NULL, NULL, NULL, '/srv/mail/mailboxes/old.example', 0, NOW(), NOW());

INSERT INTO mailboxes (id, local_part, password, remember_token, name, domain_id, alternative_email, quota, homedir, maildir, is_super_admin, send_only, active, created_at, updated_at) VALUES
    (1, 'jane', '$2y$10$LphoQAi6RGvDDO9.UqiSq.de8SXIQ9y8tlgH1z.ZarpOrLEc.kzre', NULL, 'Jane Doe', 1, 'jane@personal.example', 3,
     '/srv/mail/mailboxes/mum.example/jane', 'maildir:/srv/mail/mailboxes/mum.example/jane:LAYOUT=fs', 1, 0, 1, NOW(), NOW()),
    (2, 'noreply', '$2y$10$LphoQAi6RGvDDO9.UqiSq.de8SXIQ9y8tlgH1z.ZarpOrLEc.kzre', NULL, NULL, 1, NULL, NULL,
     '/srv/mail/mailboxes/mum.example/noreply', 'maildir:/srv/mail/mailboxes/mum.example/noreply:LAYOUT=fs', 0, 1, 1, NOW(), NOW()),
    (3, 'ghost', '$2y$10$LphoQAi6RGvDDO9.UqiSq.de8SXIQ9y8tlgH1z.ZarpOrLEc.kzre', NULL, 'Gone', 2, NULL, 0,
     '/srv/mail/mailboxes/old.example/ghost', 'maildir:/srv/mail/mailboxes/old.example/ghost:LAYOUT=fs', 0, 0, 0, NOW(), NOW());

INSERT INTO aliases (id, local_part, description, domain_id, active, deactivate_at, created_at, updated_at) VALUES
    (1, 'team', 'The whole team', 1, 1, NULL, NOW(), NOW()),
    (2, '', 'Catch-all', 1, 1, NULL, NOW(), NOW()),
    (3, 'temp', NULL, 1, 1, '2037-12-31 00:00:00', NOW(), NOW());

INSERT INTO alias_recipients (id, alias_id, recipient_address, mailbox_id) VALUES
    (1, 1, 'jane@mum.example', 1),
    (2, 1, 'friend@elsewhere.example', NULL),
    (3, 2, 'jane@mum.example', 1),
    (4, 3, 'Jane@MUM.example', 1);

INSERT INTO alias_senders (id, mailbox_id, alias_id) VALUES
    (1, 2, 1),
    (2, 1, 1);

INSERT INTO tls_policies (id, domain, policy, params, description, active, created_at, updated_at) VALUES
    (1, 'bank.example', 'secure', 'match=.bank.example', 'The bank', 1, NOW(), NOW()),
    (2, 'legacy.example', 'may', NULL, NULL, 0, NOW(), NOW());
