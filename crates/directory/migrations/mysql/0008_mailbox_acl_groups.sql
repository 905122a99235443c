-- The groups a mailbox belongs to for IMAP ACLs: `group=NAME` identifiers in dovecot-acl files
-- match them, as Dovecot's userdb field acl_groups (seed 004's userdb_acl_groups) does. A
-- change bumps the change counter, like the other tables the directory reads, so logins see it.
CREATE TABLE IF NOT EXISTS mailbox_acl_groups (
    mailbox_id INT UNSIGNED NOT NULL,
    group_name VARCHAR(191) NOT NULL,
    PRIMARY KEY (mailbox_id, group_name),
    CONSTRAINT mailbox_acl_groups_mailbox_id_foreign FOREIGN KEY (mailbox_id) REFERENCES mailboxes (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TRIGGER mailstead_mailbox_acl_groups_insert AFTER INSERT ON mailbox_acl_groups FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_mailbox_acl_groups_update AFTER UPDATE ON mailbox_acl_groups FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_mailbox_acl_groups_delete AFTER DELETE ON mailbox_acl_groups FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;
