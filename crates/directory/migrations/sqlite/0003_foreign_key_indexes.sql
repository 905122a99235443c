-- Indexes on the foreign-key columns that are not the first column of a unique key.
-- MySQL/InnoDB creates these by itself; PostgreSQL and SQLite do not, and without them
-- removing a mailbox scans alias_recipients, removing a domain scans everything, and the
-- max_mailboxes/max_aliases counts scan their tables.
CREATE INDEX mailboxes_domain_id_index ON mailboxes (domain_id);
CREATE INDEX aliases_domain_id_index ON aliases (domain_id);
CREATE INDEX alias_recipients_mailbox_id_index ON alias_recipients (mailbox_id);
CREATE INDEX alias_senders_alias_id_index ON alias_senders (alias_id);
CREATE INDEX domain_admins_domain_id_index ON domain_admins (domain_id);
CREATE INDEX mailbox_admins_mailbox_id_index ON mailbox_admins (mailbox_id);
CREATE INDEX alias_domains_target_domain_id_index ON alias_domains (target_domain_id);
