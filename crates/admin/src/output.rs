//! How answers are shown: aligned tables and `key: value` views for humans, JSON for scripts.
//!
//! Every function returns the whole text, ending in a newline, so the CLI only prints it.

use std::fmt::Display;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use mailstead_directory::manage::{AdminGrant, ApiToken};
use mailstead_directory::model::{
    Alias, AliasDomain, AuditEntry, DkimKeyInfo, Domain, Mailbox, Quota, TlsPolicy, Transport,
};
use mailstead_directory::resolve::{Outcome, Recipient, Resolution};

use crate::AdminError;
use crate::import::Import;

/// Pretty JSON of anything serialisable, with a final newline.
///
/// # Errors
/// [`AdminError::Json`] (only for types that cannot be JSON, which ours all can).
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, AdminError> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}

/// Columns padded to their widest cell, two spaces apart; the last column is not padded.
#[derive(Clone, Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let n_columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(n_columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(n_columns) {
                if i + 1 == n_columns {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `key: value` lines with the values aligned.
fn details(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(key, _)| key.len() + 1)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        out.push_str(&format!("{:<width$} {value}\n", format!("{key}:")));
    }
    out
}

/// A Unix second as RFC 3339 UTC, `-` for none.
pub fn time(unix: Option<i64>) -> String {
    unix.and_then(|at| OffsetDateTime::from_unix_timestamp(at).ok())
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".to_owned())
}

fn or_dash<T: Display>(value: &Option<T>) -> String {
    match value {
        Some(value) => value.to_string(),
        None => "-".to_owned(),
    }
}

fn active(value: bool) -> String {
    if value { "active" } else { "inactive" }.to_owned()
}

fn count_of(count: i64, max: Option<i64>) -> String {
    match max {
        Some(max) => format!("{count}/{max}"),
        None => count.to_string(),
    }
}

fn quota_or(value: Option<Quota>, none: &str) -> String {
    value.map_or_else(|| none.to_owned(), |quota| quota.to_string())
}

fn max_quota(gib: Option<i64>) -> String {
    match gib {
        Some(gib) if gib > 0 => format!("{gib}G"),
        _ => "-".to_owned(),
    }
}

pub fn domains(domains: &[Domain]) -> String {
    if domains.is_empty() {
        return "no domains yet; add one with `mailstead domain add DOMAIN`\n".to_owned();
    }
    let mut table = Table::new(&[
        "DOMAIN",
        "STATUS",
        "MAILBOXES",
        "ALIASES",
        "QUOTA",
        "MAX QUOTA",
        "DESCRIPTION",
    ]);
    for domain in domains {
        table.row(vec![
            domain.domain.clone(),
            active(domain.active),
            count_of(domain.mailbox_count, domain.max_mailboxes),
            count_of(domain.alias_count, domain.max_aliases),
            quota_or(domain.quota, "unlimited"),
            max_quota(domain.max_quota_gib),
            or_dash(&domain.description),
        ]);
    }
    table.render()
}

pub fn domain(domain: &Domain) -> String {
    details(&[
        ("domain", domain.domain.clone()),
        ("status", active(domain.active)),
        ("description", or_dash(&domain.description)),
        ("mailbox quota", quota_or(domain.quota, "unlimited")),
        ("max quota", max_quota(domain.max_quota_gib)),
        (
            "mailboxes",
            count_of(domain.mailbox_count, domain.max_mailboxes),
        ),
        ("aliases", count_of(domain.alias_count, domain.max_aliases)),
        ("homedir", domain.homedir.clone()),
        ("created", time(domain.created_at)),
    ])
}

fn mailbox_flags(mailbox: &Mailbox) -> String {
    let mut flags = vec![active(mailbox.active)];
    if !mailbox.domain_active {
        flags.push("domain inactive".to_owned());
    }
    if mailbox.send_only {
        flags.push("send-only".to_owned());
    }
    if mailbox.is_super_admin {
        flags.push("super-admin".to_owned());
    }
    flags.join(",")
}

fn mailbox_quota(mailbox: &Mailbox) -> String {
    match mailbox.own_quota {
        Some(quota) => quota.to_string(),
        None => format!("{} (domain)", mailbox.effective_quota),
    }
}

pub fn mailboxes(mailboxes: &[Mailbox]) -> String {
    if mailboxes.is_empty() {
        return "no mailboxes; add one with `mailstead mailbox add ADDRESS`\n".to_owned();
    }
    let mut table = Table::new(&["ADDRESS", "STATUS", "QUOTA", "SCHEME", "NAME"]);
    for mailbox in mailboxes {
        table.row(vec![
            mailbox.address.to_string(),
            mailbox_flags(mailbox),
            mailbox_quota(mailbox),
            mailbox.password_scheme.clone(),
            or_dash(&mailbox.name),
        ]);
    }
    table.render()
}

pub fn mailbox(mailbox: &Mailbox) -> String {
    details(&[
        ("address", mailbox.address.to_string()),
        ("status", mailbox_flags(mailbox)),
        ("name", or_dash(&mailbox.name)),
        ("alternative email", or_dash(&mailbox.alternative_email)),
        ("quota", mailbox_quota(mailbox)),
        ("home", mailbox.location.home.display().to_string()),
        ("mail", mailbox.location.mail.clone()),
        ("maildir", mailbox.location.maildir.display().to_string()),
        ("password scheme", mailbox.password_scheme.clone()),
        ("created", time(mailbox.created_at)),
    ])
}

fn alias_address(alias: &Alias) -> String {
    if alias.address.is_catch_all() {
        format!("@{}", alias.address.domain())
    } else {
        alias.address.to_string()
    }
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

pub fn aliases(aliases: &[Alias]) -> String {
    if aliases.is_empty() {
        return "no aliases; add one with `mailstead alias add ADDRESS RECIPIENT...`\n".to_owned();
    }
    let mut table = Table::new(&["ALIAS", "STATUS", "EXPIRES", "RECIPIENTS", "SENDERS"]);
    for alias in aliases {
        table.row(vec![
            alias_address(alias),
            active(alias.active),
            time(alias.deactivate_at),
            list_or_dash(&alias.recipients),
            list_or_dash(&alias.senders),
        ]);
    }
    table.render()
}

pub fn alias(alias: &Alias) -> String {
    details(&[
        ("alias", alias_address(alias)),
        ("status", active(alias.active)),
        ("description", or_dash(&alias.description)),
        ("expires", time(alias.deactivate_at)),
        ("recipients", list_or_dash(&alias.recipients)),
        ("senders", list_or_dash(&alias.senders)),
        ("created", time(alias.created_at)),
    ])
}

pub fn alias_domains(alias_domains: &[AliasDomain]) -> String {
    if alias_domains.is_empty() {
        return "no alias domains; add one with `mailstead alias-domain add DOMAIN TARGET`\n"
            .to_owned();
    }
    let mut table = Table::new(&["ALIAS DOMAIN", "TARGET", "STATUS", "DESCRIPTION"]);
    for alias_domain in alias_domains {
        table.row(vec![
            alias_domain.domain.clone(),
            alias_domain.target.clone(),
            active(alias_domain.active),
            or_dash(&alias_domain.description),
        ]);
    }
    table.render()
}

pub fn tls_policies(policies: &[TlsPolicy]) -> String {
    if policies.is_empty() {
        return "no TLS policies; add one with `mailstead tls-policy add DOMAIN POLICY`\n"
            .to_owned();
    }
    let mut table = Table::new(&["DOMAIN", "POLICY", "STATUS", "PARAMS", "DESCRIPTION"]);
    for policy in policies {
        table.row(vec![
            policy.domain.clone(),
            policy.policy.as_str().to_owned(),
            active(policy.active),
            or_dash(&policy.params),
            or_dash(&policy.description),
        ]);
    }
    table.render()
}

pub fn tls_policy(policy: &TlsPolicy) -> String {
    details(&[
        ("domain", policy.domain.clone()),
        ("policy", policy.policy.as_str().to_owned()),
        ("status", active(policy.active)),
        ("params", or_dash(&policy.params)),
        ("description", or_dash(&policy.description)),
    ])
}

pub fn transports(transports: &[Transport]) -> String {
    if transports.is_empty() {
        return "no transports; add one with `mailstead transport add DOMAIN NEXTHOP`\n".to_owned();
    }
    let mut table = Table::new(&["DOMAIN", "NEXT HOP", "STATUS", "DESCRIPTION"]);
    for transport in transports {
        table.row(vec![
            transport.domain.clone(),
            transport.next_hop.to_string(),
            active(transport.active),
            or_dash(&transport.description),
        ]);
    }
    table.render()
}

pub fn transport(transport: &Transport) -> String {
    details(&[
        ("domain", transport.domain.clone()),
        ("next hop", transport.next_hop.to_string()),
        ("status", active(transport.active)),
        ("description", or_dash(&transport.description)),
        ("created", time(transport.created_at)),
    ])
}

/// A DKIM key with the DNS record to publish, as `dkim list` shows it and in JSON.
#[derive(Clone, Debug, Serialize)]
pub struct DkimKeyView {
    #[serde(flatten)]
    pub key: DkimKeyInfo,
    pub dns_record: String,
}

impl DkimKeyView {
    pub fn new(key: DkimKeyInfo) -> DkimKeyView {
        let dns_record =
            crate::dkim::dns_record(&key.selector, &key.domain, key.algorithm, &key.public_key);
        DkimKeyView { key, dns_record }
    }
}

/// One block per key: the records are too long for a table.
pub fn dkim_keys(keys: &[DkimKeyView]) -> String {
    if keys.is_empty() {
        return "no DKIM keys; make one with `mailstead dkim generate DOMAIN`\n".to_owned();
    }
    let blocks: Vec<String> = keys.iter().map(dkim_key).collect();
    blocks.join("\n")
}

pub fn dkim_key(view: &DkimKeyView) -> String {
    let key = &view.key;
    details(&[
        ("domain", key.domain.clone()),
        ("selector", key.selector.clone()),
        ("algorithm", key.algorithm.as_str().to_owned()),
        ("status", active(key.active)),
        ("created", time(key.created_at)),
        ("dns record", view.dns_record.clone()),
    ])
}

/// Admin grants: who manages what.
pub fn admin_grants(grants: &[AdminGrant], what: &str) -> String {
    if grants.is_empty() {
        return format!("no {what} admins\n");
    }
    let mut table = Table::new(&["ADMIN", "MANAGES", "SINCE"]);
    for grant in grants {
        table.row(vec![
            grant.admin.clone(),
            grant.manages.clone(),
            time(grant.created_at),
        ]);
    }
    table.render()
}

/// API tokens, without their secrets (only digests are stored).
pub fn api_tokens(tokens: &[ApiToken]) -> String {
    if tokens.is_empty() {
        return "no API tokens; make one with `mailstead token create --scope SCOPE`\n".to_owned();
    }
    let mut table = Table::new(&[
        "ID",
        "NAME",
        "SCOPE",
        "STATUS",
        "CREATED BY",
        "CREATED",
        "EXPIRES",
        "LAST USED",
    ]);
    let now = crate::input::unix_now();
    for token in tokens {
        let status = if token.revoked {
            "revoked"
        } else if token.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        };
        table.row(vec![
            token.id.to_string(),
            token.name.clone(),
            token.scope.clone(),
            status.to_owned(),
            token.created_by.clone(),
            time(token.created_at),
            token
                .expires_at
                .map_or_else(|| "never".to_owned(), |at| time(Some(at))),
            time(token.last_used_at),
        ]);
    }
    table.render()
}

pub fn audit(entries: &[AuditEntry]) -> String {
    if entries.is_empty() {
        return "no changes recorded yet\n".to_owned();
    }
    let mut table = Table::new(&[
        "ID", "TIME", "ACTOR", "FROM", "ACTION", "SUBJECT", "DETAILS",
    ]);
    for entry in entries {
        table.row(vec![
            entry.id.to_string(),
            time(entry.at),
            entry.actor.clone(),
            or_dash(&entry.source),
            entry.action.clone(),
            entry.subject.clone(),
            or_dash(&entry.details),
        ]);
    }
    table.render()
}

/// One address: the decision, then why (the trace), then where mail goes.
pub fn resolution(resolution: &Resolution) -> String {
    let mut out = String::new();
    match &resolution.outcome {
        Outcome::Deliver(recipients) => {
            out.push_str(&format!("{}: deliver\n", resolution.address));
            for line in &resolution.trace {
                out.push_str(&format!("  why: {line}\n"));
            }
            for recipient in recipients {
                match recipient {
                    Recipient::Local(local) => {
                        let detail = local
                            .detail
                            .as_ref()
                            .map(|detail| format!(", detail {detail:?}"))
                            .unwrap_or_default();
                        out.push_str(&format!(
                            "  -> {} (mailbox, {}, quota {}{detail})\n",
                            local.address,
                            local.location.maildir.display(),
                            local.quota
                        ));
                    }
                    Recipient::External { address } => {
                        out.push_str(&format!("  -> {address} (external)\n"));
                    }
                }
            }
        }
        Outcome::Reject(rejection) => {
            out.push_str(&format!(
                "{}: reject ({})\n",
                resolution.address,
                rejection.describe()
            ));
            for line in &resolution.trace {
                out.push_str(&format!("  why: {line}\n"));
            }
        }
    }
    out
}

/// What `auth test` says, and its JSON form.
#[derive(Clone, Debug, Serialize)]
pub struct AuthAnswer {
    pub login: String,
    pub accepted: bool,
    /// Why a login was refused.
    pub reason: Option<&'static str>,
}

impl AuthAnswer {
    /// `reason` is `None` for an accepted login, else why it was refused.
    pub fn new(login: &str, reason: Option<&'static str>) -> AuthAnswer {
        AuthAnswer {
            login: login.to_owned(),
            accepted: reason.is_none(),
            reason,
        }
    }

    pub fn text(&self) -> String {
        match self.reason {
            None => format!("accepted: {} and this password may log in\n", self.login),
            Some(reason) => format!("refused: {reason}\n"),
        }
    }
}

/// What `may-send` says, and its JSON form.
#[derive(Clone, Debug, Serialize)]
pub struct MaySendAnswer {
    pub login: String,
    pub from: String,
    pub allowed: bool,
}

impl MaySendAnswer {
    pub fn text(&self) -> String {
        if self.allowed {
            format!("yes: {} may send as {}\n", self.login, self.from)
        } else {
            format!(
                "no: {} may not send as {}; see `mailstead sender show {}`\n",
                self.login, self.from, self.login
            )
        }
    }
}

/// The plan (or what was done) and the counts.
pub fn import(import: &Import) -> String {
    let mut out = String::new();
    if import.applied {
        out.push_str(&format!("import from {}\n", import.source));
    } else {
        out.push_str(&format!(
            "import from {} (dry run: nothing was changed)\n",
            import.source
        ));
    }
    let mut table = Table::new(&["ACTION", "KIND", "SUBJECT", "DETAIL"]);
    for step in &import.steps {
        let mut detail: Vec<String> = step.status.detail().into_iter().collect();
        detail.extend(step.notes.iter().cloned());
        table.row(vec![
            step.status.label().to_owned(),
            step.kind.noun().to_owned(),
            step.subject.clone(),
            detail.join("; "),
        ]);
    }
    if table.is_empty() {
        out.push_str("the source holds nothing to import\n");
    } else {
        out.push_str(&table.render());
    }
    let counts = import.counts();
    let line = |name: &str, c: &crate::import::Counts| {
        let created = if import.applied {
            format!("{} created", c.created)
        } else {
            format!("{} to create", c.to_create)
        };
        format!(
            "{name}: {created}, {} unchanged, {} differ (kept), {} skipped, {} failed\n",
            c.unchanged, c.differs, c.skipped, c.failed
        )
    };
    out.push_str(&line("domains", &counts.domains));
    out.push_str(&line("mailboxes", &counts.mailboxes));
    if counts.aliases != Default::default() || counts.tls_policies != Default::default() {
        out.push_str(&line("aliases", &counts.aliases));
        out.push_str(&line("tls policies", &counts.tls_policies));
    }
    out.push_str(&line("total", &counts.total));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_trim() {
        let mut table = Table::new(&["A", "LONGER", "C"]);
        table.row(vec!["xyz".to_owned(), "1".to_owned(), "last".to_owned()]);
        table.row(vec!["q".to_owned(), "".to_owned(), "".to_owned()]);
        assert_eq!(table.render(), "A    LONGER  C\nxyz  1       last\nq\n");
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(time(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(time(None), "-");
    }

    #[test]
    fn details_align_values() {
        assert_eq!(
            details(&[("a", "1".to_owned()), ("long key", "2".to_owned())]),
            "a:        1\nlong key: 2\n"
        );
    }
}
