-- Every writer bumps the change counter, not only Mailstead: MUM's web UI and hand-written SQL
-- change these tables too, and running servers cache answers read from them. A trigger on
-- each table the directory reads (INSERT, UPDATE, DELETE) bumps directory_state.change_serial
-- in the writer's own transaction, so the change reaches every running server's cache within
-- one change_poll. The statements that write these tables are unchanged.
-- One single-statement body per trigger: no BEGIN/END, so no DELIMITER is needed. MySQL has
-- no statement-level triggers (one bump per row), and TRUNCATE fires none. Triggers run with
-- their definer's rights (the user that migrated), so other writers need no right on
-- directory_state. With binary logging on, creating them needs SUPER or
-- log_bin_trust_function_creators = 1 (see the README).

CREATE TRIGGER mailstead_domains_insert AFTER INSERT ON domains FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_domains_update AFTER UPDATE ON domains FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_domains_delete AFTER DELETE ON domains FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_mailboxes_insert AFTER INSERT ON mailboxes FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_mailboxes_update AFTER UPDATE ON mailboxes FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_mailboxes_delete AFTER DELETE ON mailboxes FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_aliases_insert AFTER INSERT ON aliases FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_aliases_update AFTER UPDATE ON aliases FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_aliases_delete AFTER DELETE ON aliases FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_alias_recipients_insert AFTER INSERT ON alias_recipients FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_alias_recipients_update AFTER UPDATE ON alias_recipients FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_alias_recipients_delete AFTER DELETE ON alias_recipients FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_alias_senders_insert AFTER INSERT ON alias_senders FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_alias_senders_update AFTER UPDATE ON alias_senders FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_alias_senders_delete AFTER DELETE ON alias_senders FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_tls_policies_insert AFTER INSERT ON tls_policies FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_tls_policies_update AFTER UPDATE ON tls_policies FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_tls_policies_delete AFTER DELETE ON tls_policies FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_alias_domains_insert AFTER INSERT ON alias_domains FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_alias_domains_update AFTER UPDATE ON alias_domains FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;

CREATE TRIGGER mailstead_alias_domains_delete AFTER DELETE ON alias_domains FOR EACH ROW
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;
