-- The groups a mailbox belongs to for IMAP ACLs: `group=NAME` identifiers in dovecot-acl files
-- match them, as Dovecot's userdb field acl_groups (seed 004's userdb_acl_groups) does. A
-- change bumps the change counter, like the other tables the directory reads, so logins see it.
CREATE TABLE IF NOT EXISTS mailbox_acl_groups (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, group_name)
);

CREATE TRIGGER mailstead_mailbox_acl_groups_insert AFTER INSERT ON mailbox_acl_groups
BEGIN
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;
END;

CREATE TRIGGER mailstead_mailbox_acl_groups_update AFTER UPDATE ON mailbox_acl_groups
BEGIN
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;
END;

CREATE TRIGGER mailstead_mailbox_acl_groups_delete AFTER DELETE ON mailbox_acl_groups
BEGIN
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;
END;
