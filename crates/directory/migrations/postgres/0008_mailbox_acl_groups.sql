-- The groups a mailbox belongs to for IMAP ACLs: `group=NAME` identifiers in dovecot-acl files
-- match them, as Dovecot's userdb field acl_groups (seed 004's userdb_acl_groups) does. A
-- change bumps the change counter, like the other tables the directory reads, so logins see it.
CREATE TABLE IF NOT EXISTS mailbox_acl_groups (
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    group_name VARCHAR(255) NOT NULL,
    PRIMARY KEY (mailbox_id, group_name)
);

CREATE TRIGGER mailstead_mailbox_acl_groups_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mailbox_acl_groups
    FOR EACH STATEMENT EXECUTE FUNCTION mailstead_bump_change_serial();
