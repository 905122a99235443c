-- Every writer bumps the change counter, not only Mailstead: MUM's web UI and hand-written SQL
-- change these tables too, and running servers cache answers read from them. A trigger on
-- each table the directory reads (INSERT, UPDATE, DELETE) bumps directory_state.change_serial
-- in the writer's own transaction, so the change reaches every running server's cache within
-- one change_poll. The statements that write these tables are unchanged.
-- One bump per statement (TRUNCATE included), however many rows it touches. SECURITY DEFINER:
-- the writer (MUM's database user, say) needs no right on directory_state, as with MySQL's
-- triggers, which run as their definer; the search_path is pinned for that reason.
CREATE FUNCTION mailstead_bump_change_serial() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE directory_state SET change_serial = change_serial + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER mailstead_domains_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION mailstead_bump_change_serial();

CREATE TRIGGER mailstead_mailboxes_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mailboxes
    FOR EACH STATEMENT EXECUTE FUNCTION mailstead_bump_change_serial();

CREATE TRIGGER mailstead_aliases_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aliases
    FOR EACH STATEMENT EXECUTE FUNCTION mailstead_bump_change_serial();

CREATE TRIGGER mailstead_alias_recipients_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON alias_recipients
    FOR EACH STATEMENT EXECUTE FUNCTION mailstead_bump_change_serial();

CREATE TRIGGER mailstead_alias_senders_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON alias_senders
    FOR EACH STATEMENT EXECUTE FUNCTION mailstead_bump_change_serial();

CREATE TRIGGER mailstead_tls_policies_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tls_policies
    FOR EACH STATEMENT EXECUTE FUNCTION mailstead_bump_change_serial();

CREATE TRIGGER mailstead_alias_domains_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON alias_domains
    FOR EACH STATEMENT EXECUTE FUNCTION mailstead_bump_change_serial();
