//! Reading a Dovecot passwd-file into mailbox records.
//!
//! # Format
//! One user per line, as Dovecot's `passwd-file` driver reads it:
//!
//! ```text
//! user@domain:{SCHEME}hash:uid:gid:gecos:home:shell:extra fields
//! ```
//!
//! Every field after the password may be empty or missing. The extra fields are everything after
//! the seventh colon (they contain colons themselves), split at whitespace into `key=value`
//! pairs; a `userdb_` prefix marks userdb fields and is accepted with or without. `#` starts a
//! comment line; blank lines are skipped; a line ending in a backslash continues on the next
//! one, whose leading whitespace is dropped (the layout of Dovecot's own documentation, seed
//! 004: `userdb_quota_rule=\` then `    *:storage=5G`).
//!
//! What is kept:
//! - the password field exactly as written (hashes are never re-encoded);
//! - gecos as the mailbox's name;
//! - home (the sixth field, or `userdb_home=`);
//! - `userdb_mail=` as the mail location, with `~`, `%h`, `%u`, `%n`, `%d` expanded because
//!   the directory stores one location per mailbox and MUM's schema keeps it unique. Without
//!   one, a user with a home gets `maildir:<home>/Maildir` (Dovecot's usual
//!   `mail_location = maildir:~/Maildir`); a user with neither gets the configured templates;
//! - the default quota rule (`*` or `?`) of `userdb_quota_rule=`, read with Dovecot's units:
//!   `storage=` is in KiB unless suffixed with B, K, M, G or T (binary, as in Dovecot's
//!   `quota-util.c`), `bytes=` is in bytes, `0` is unlimited;
//! - `userdb_acl_groups=` (comma-separated, as Dovecot's ACL plugin reads it) as the mailbox's
//!   groups for IMAP ACLs.
//!
//! What is ignored, with a note: uid, gid and shell (Mailstead delivers as one user), message
//! count limits, per-folder quota rules (`Trash:storage=+100M`), `quota_rule2…`, and other
//! extra fields.

use std::collections::HashMap;
use std::path::Path;

use mailstead_directory::address::Address;
use mailstead_directory::manage::fill_template;
use mailstead_directory::model::Quota;

use crate::AdminError;

/// One user of a passwd-file.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// The line it starts on, from 1.
    pub line: usize,
    pub address: Address,
    /// The password field as written: a `{SCHEME}` hash or a bare crypt string.
    pub password: String,
    /// From gecos.
    pub name: Option<String>,
    pub home: Option<String>,
    /// A Dovecot mail location (`maildir:/path[:options]`) with the user's variables expanded;
    /// `~` and `%h` still need the home, which [`PasswdEntry::mail_location`] fills in.
    pub mail: Option<String>,
    /// `None` when the file sets no default quota rule: the domain's quota applies.
    pub quota: Option<Quota>,
    /// From `userdb_acl_groups=`: the groups whose `group=NAME` ACL entries apply to it.
    pub acl_groups: Vec<String>,
    /// What was ignored or is doubtful about this entry, for the import report.
    pub notes: Vec<String>,
}

impl std::fmt::Debug for PasswdEntry {
    // By hand, so that a hash never lands in a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswdEntry")
            .field("line", &self.line)
            .field("address", &self.address.to_string())
            .field("name", &self.name)
            .field("home", &self.home)
            .field("mail", &self.mail)
            .field("quota", &self.quota)
            .field("acl_groups", &self.acl_groups)
            .finish_non_exhaustive()
    }
}

impl PasswdEntry {
    /// The mail location to store, given the home the mailbox will have: `~` and `%h` are
    /// replaced by it. Without a `mail` field, `maildir:<home>/Maildir` when the file gave a
    /// home, else `None` (the directory's template applies).
    pub fn mail_location(&self, home: &str) -> Option<String> {
        match &self.mail {
            Some(mail) => Some(expand_home(mail, home)),
            None => self
                .home
                .as_ref()
                .map(|home| format!("maildir:{home}/Maildir")),
        }
    }
}

/// Reads and parses the passwd-file at `path`.
///
/// # Errors
/// [`AdminError::Read`] when it cannot be read (or is not UTF-8), else as [`parse`].
pub fn read(path: &Path) -> Result<Vec<PasswdEntry>, AdminError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| AdminError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, &shown)
}

/// Parses a whole passwd-file. `path` is only used in messages.
///
/// # Errors
/// [`AdminError::Parse`] naming the line and what is wrong, at the first bad line.
pub fn parse(text: &str, path: &str) -> Result<Vec<PasswdEntry>, AdminError> {
    let mut entries: Vec<PasswdEntry> = Vec::new();
    let mut first_line_of: HashMap<Address, usize> = HashMap::new();
    for (line, logical) in logical_lines(text, path)? {
        let trimmed = logical.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let entry = parse_entry(trimmed, line).map_err(|message| AdminError::Parse {
            path: path.to_owned(),
            line,
            message,
        })?;
        if let Some(first) = first_line_of.insert(entry.address.clone(), line) {
            return Err(AdminError::Parse {
                path: path.to_owned(),
                line,
                message: format!("{} is listed again (first on line {first})", entry.address),
            });
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Joins continued lines; yields `(first physical line number, logical line)`.
fn logical_lines(text: &str, path: &str) -> Result<Vec<(usize, String)>, AdminError> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let (start, mut joined) = match pending.take() {
            // A continuation: its indentation is layout, not content.
            Some((start, so_far)) => (start, so_far + raw.trim_start()),
            None => (number, raw.to_owned()),
        };
        if joined.ends_with('\\') {
            joined.pop();
            pending = Some((start, joined));
        } else {
            out.push((start, joined));
        }
    }
    if let Some((start, _)) = pending {
        return Err(AdminError::Parse {
            path: path.to_owned(),
            line: start,
            message: "the line ends with a backslash but the file ends there; remove the backslash"
                .to_owned(),
        });
    }
    Ok(out)
}

fn parse_entry(line_text: &str, line: usize) -> Result<PasswdEntry, String> {
    // Seven separators at most: the extra fields keep their own colons.
    let fields: Vec<&str> = line_text.splitn(8, ':').collect();
    let field = |i: usize| fields.get(i).map(|f| f.trim()).unwrap_or("");
    let user = field(0);
    if user.is_empty() {
        return Err("the user name (first field) is empty".to_owned());
    }
    if !user.contains('@') {
        return Err(format!(
            "user {user:?} has no @domain; mailstead logins are full addresses (user@domain)"
        ));
    }
    let address = Address::parse(user).map_err(|err| err.to_string())?;
    let password = fields.get(1).copied().unwrap_or("");
    if password.is_empty() {
        return Err(format!(
            "{address} has an empty password field; a mailbox needs a password hash such as {{BLF-CRYPT}}$2y$…"
        ));
    }
    let mut notes = Vec::new();
    if let Err(err) = mailstead_password::scheme_name(password) {
        notes.push(format!(
            "its password cannot be checked by mailstead ({err}); it is kept as is, but this login will fail until the password is set again"
        ));
    }
    let name = Some(field(4)).filter(|s| !s.is_empty()).map(str::to_owned);
    let mut home = Some(field(5)).filter(|s| !s.is_empty()).map(str::to_owned);
    let mut mail: Option<String> = None;
    let mut quota: Option<Quota> = None;
    let mut acl_groups: Vec<String> = Vec::new();
    let mut ignored: Vec<String> = Vec::new();
    for extra in field(7).split_whitespace() {
        let (key, value) = extra.split_once('=').unwrap_or((extra, ""));
        match key.strip_prefix("userdb_").unwrap_or(key) {
            "quota_rule" => {
                let (rule_quota, rule_notes) = parse_quota_rule(value)?;
                if rule_quota.is_some() {
                    quota = rule_quota;
                }
                notes.extend(rule_notes);
            }
            "mail" if !value.is_empty() => mail = Some(value.to_owned()),
            "acl_groups" => acl_groups.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|group| !group.is_empty())
                    .map(str::to_owned),
            ),
            "home" if !value.is_empty() => home = Some(value.to_owned()),
            _ => ignored.push(key.to_owned()),
        }
    }
    if !ignored.is_empty() {
        notes.push(format!("extra fields ignored: {}", ignored.join(", ")));
    }
    if let Some(home) = &home
        && !home.starts_with('/')
    {
        return Err(format!("home {home:?} is not an absolute path"));
    }
    // The location of an address unsafe as a path is never built: the import plan reports
    // and skips that entry (see `import::plan_passwd_file`), and the rest of the file goes on.
    let mail = match mail {
        Some(mail) if address.check_path_safe().is_ok() => {
            Some(expand_user_variables(&mail, &address)?)
        }
        _ => None,
    };
    if let Some(mail) = &mail {
        let (driver, path) = split_driver(mail);
        if driver.is_some_and(|driver| !driver.eq_ignore_ascii_case("maildir")) {
            return Err(format!(
                "mail location {mail:?} is not a Maildir, the only format mailstead stores; convert the mail first or drop userdb_mail to use the default"
            ));
        }
        if !(path.starts_with('/') || path.starts_with('~') || path.starts_with("%h")) {
            return Err(format!(
                "mail location {mail:?} is not an absolute path; write it like maildir:/var/vmail/%d/%n"
            ));
        }
    }
    Ok(PasswdEntry {
        line,
        address,
        password: password.to_owned(),
        name,
        home,
        mail,
        quota,
        acl_groups,
        notes,
    })
}

/// Reads a `quota_rule` value: `<mailbox mask>:<limit>[:<limit>…]`. Only the default rule
/// (`*` or `?`) is a mailbox quota; returns it (if it sets a storage limit) and notes.
fn parse_quota_rule(value: &str) -> Result<(Option<Quota>, Vec<String>), String> {
    let Some((mask, limits)) = value.split_once(':') else {
        return Err(format!(
            "quota rule {value:?} has no mailbox mask; write it like *:storage=5G"
        ));
    };
    if mask != "*" && mask != "?" {
        return Ok((
            None,
            vec![format!(
                "quota rule {value:?} is for one folder only; ignored"
            )],
        ));
    }
    if limits == "ignore" || limits.starts_with("backend=") {
        return Ok((None, vec![format!("quota rule {value:?} ignored")]));
    }
    let mut quota = None;
    let mut notes = Vec::new();
    for limit in limits.split(':') {
        let (key, amount) = limit.split_once('=').unwrap_or((limit, ""));
        let default_unit = match key {
            // Dovecot: storage= is KiB unless suffixed, bytes= is bytes.
            "storage" => 1024,
            "bytes" => 1,
            "messages" => {
                notes.push(format!(
                    "message count limit {limit:?} ignored; mailstead limits storage only"
                ));
                continue;
            }
            _ => {
                return Err(format!(
                    "quota rule {value:?} has an unknown limit {key:?}; use storage= or bytes="
                ));
            }
        };
        let bytes = parse_dovecot_size(amount, default_unit)
            .map_err(|why| format!("quota rule {value:?}: {why}"))?;
        quota = Some(Quota {
            bytes: (bytes != 0).then_some(bytes),
        });
    }
    Ok((quota, notes))
}

/// A size as Dovecot's `quota_limit_parse` reads it: an integer, then an optional unit of
/// which only the first letter counts (`5G` = `5GB` = `5GiB`).
fn parse_dovecot_size(amount: &str, default_unit: u64) -> Result<u64, String> {
    let digits_end = amount
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(amount.len());
    let (number, unit) = amount.split_at(digits_end);
    if amount.starts_with('+') || amount.starts_with('-') {
        return Err(format!(
            "{amount:?} is relative, which the default rule cannot be"
        ));
    }
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{amount:?} is not a whole number with an optional unit like 5G"))?;
    let multiplier: u64 = match unit.chars().next().map(|c| c.to_ascii_uppercase()) {
        None => default_unit,
        Some('B') => 1,
        Some('K') => 1 << 10,
        Some('M') => 1 << 20,
        Some('G') => 1 << 30,
        Some('T') => 1 << 40,
        Some('%') => {
            return Err(format!(
                "{amount:?} is a percentage, which the default rule cannot be"
            ));
        }
        Some(_) => {
            return Err(format!(
                "{amount:?} has an unknown unit; use B, K, M, G or T"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .filter(|bytes| *bytes < (1 << 62))
        .ok_or_else(|| format!("{amount:?} is out of range"))
}

/// Expands the per-user Dovecot variables of a mail location; `~` and `%h` wait for the home.
fn expand_user_variables(mail: &str, address: &Address) -> Result<String, String> {
    let long_names_shortened = mail
        .replace("%{user}", "%u")
        .replace("%{username}", "%n")
        .replace("%{domain}", "%d")
        .replace("%{home}", "%h");
    let expanded = fill_template(&long_names_shortened, address).map_err(|err| err.to_string())?;
    if expanded
        .match_indices('%')
        .any(|(at, _)| !expanded[at..].starts_with("%h"))
    {
        return Err(format!(
            "mail location {mail:?} uses a Dovecot variable mailstead does not expand; write the path out or use %u, %n, %d, %h or ~"
        ));
    }
    Ok(expanded)
}

/// Splits `driver:path[:options]` into the driver and the rest; a location that starts with
/// a path has no driver.
fn split_driver(mail: &str) -> (Option<&str>, &str) {
    match mail.split_once(':') {
        Some((driver, rest)) if !driver.contains('/') && !driver.starts_with('~') => {
            (Some(driver), rest)
        }
        _ => (None, mail),
    }
}

/// Replaces `~` at the start of the path and `%h` anywhere with `home`.
fn expand_home(mail: &str, home: &str) -> String {
    let (prefix, path) = match split_driver(mail) {
        (Some(driver), rest) => (format!("{driver}:"), rest),
        (None, path) => (String::new(), path),
    };
    let path = match path.strip_prefix('~') {
        Some(rest) => format!("{home}{rest}"),
        None => path.to_owned(),
    };
    format!("{prefix}{}", path.replace("%h", home))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn one(line: &str) -> PasswdEntry {
        let mut entries = parse(line, "test").unwrap();
        assert_eq!(entries.len(), 1);
        entries.remove(0)
    }

    fn error(text: &str) -> String {
        parse(text, "users").unwrap_err().to_string()
    }

    #[test]
    fn reads_the_seed_004_layout_with_a_continued_line() {
        let text = "# comment\n\nalice@Example.org:{SSHA}HFihuyh/+b9D9dcyhGE2ptlLU8cwYIUo:5000:5000::/var/vmail/example.org/alice::userdb_quota_rule=\\\n    *:storage=5G userdb_acl_groups=PublicMailboxAdmins\n";
        let entry = one(text);
        assert_eq!(entry.line, 3);
        assert_eq!(entry.address.to_string(), "alice@example.org");
        assert_eq!(entry.password, "{SSHA}HFihuyh/+b9D9dcyhGE2ptlLU8cwYIUo");
        assert_eq!(entry.home.as_deref(), Some("/var/vmail/example.org/alice"));
        assert_eq!(
            entry.quota,
            Some(Quota {
                bytes: Some(5 * GIB)
            })
        );
        assert_eq!(
            entry
                .mail_location("/var/vmail/example.org/alice")
                .as_deref(),
            Some("maildir:/var/vmail/example.org/alice/Maildir")
        );
        assert_eq!(entry.acl_groups, vec!["PublicMailboxAdmins"]);
        assert!(entry.notes.is_empty(), "{:?}", entry.notes);
        let two = one("b@example.org:{PLAIN}x:::::: acl_groups=Editors,Sales\n");
        assert_eq!(two.acl_groups, vec!["Editors", "Sales"]);
    }

    #[test]
    fn short_lines_and_empty_fields() {
        let entry = one("bob@example.org:{PLAIN}bob-secret-1");
        assert_eq!(entry.name, None);
        assert_eq!(entry.home, None);
        assert_eq!(entry.quota, None);
        assert_eq!(entry.mail_location("/x"), None);
        let entry = one(
            "bob@example.org:$2y$10$LphoQAi6RGvDDO9.UqiSq.de8SXIQ9y8tlgH1z.ZarpOrLEc.kzre::::::",
        );
        assert!(entry.password.starts_with("$2y$"));
        assert!(entry.notes.is_empty(), "{:?}", entry.notes);
    }

    #[test]
    fn quota_units_follow_dovecot() {
        let quota =
            |rule: &str| one(&format!("a@b.c:{{PLAIN}}x:::::: userdb_quota_rule={rule}")).quota;
        assert_eq!(
            quota("*:storage=5G"),
            Some(Quota {
                bytes: Some(5 * GIB)
            })
        );
        assert_eq!(
            quota("*:storage=5GB"),
            Some(Quota {
                bytes: Some(5 * GIB)
            })
        );
        assert_eq!(
            quota("*:storage=5120M"),
            Some(Quota {
                bytes: Some(5 * GIB)
            })
        );
        assert_eq!(
            quota("*:storage=1T"),
            Some(Quota {
                bytes: Some(1024 * GIB)
            })
        );
        // A bare number is KiB for storage=, bytes for bytes=.
        assert_eq!(quota("*:storage=1048576"), Some(Quota { bytes: Some(GIB) }));
        assert_eq!(
            quota("*:bytes=1048576"),
            Some(Quota {
                bytes: Some(1 << 20)
            })
        );
        assert_eq!(quota("*:storage=0"), Some(Quota::UNLIMITED));
        assert_eq!(
            quota("?:storage=100M:messages=1000"),
            Some(Quota {
                bytes: Some(100 << 20)
            })
        );
        assert_eq!(quota("Trash:storage=+100M"), None);
        let entry = one(
            "a@b.c:{PLAIN}x:::::: quota_rule=*:messages=10 userdb_quota_rule2=Trash:storage=+10%",
        );
        assert_eq!(entry.quota, None);
        assert_eq!(entry.notes.len(), 2, "{:?}", entry.notes);
    }

    #[test]
    fn mail_locations_are_expanded_per_user() {
        let entry = one(
            "Carol@example.net:{PLAIN}x:1:1:Carol C:/home/carol::userdb_mail=maildir:~/Maildir:LAYOUT=fs",
        );
        assert_eq!(entry.name.as_deref(), Some("Carol C"));
        assert_eq!(
            entry.mail_location("/home/carol").as_deref(),
            Some("maildir:/home/carol/Maildir:LAYOUT=fs")
        );
        let entry = one("dave@example.net:{PLAIN}x:::::: mail=maildir:/srv/%d/%n");
        assert_eq!(
            entry.mail_location("/unused").as_deref(),
            Some("maildir:/srv/example.net/dave")
        );
    }

    #[test]
    fn errors_name_the_line_and_the_fault() {
        assert_eq!(
            error("# x\nalice:{PLAIN}x\n"),
            "users, line 2: user \"alice\" has no @domain; mailstead logins are full addresses (user@domain)"
        );
        assert_eq!(
            error("a@b.c:\n"),
            "users, line 1: a@b.c has an empty password field; a mailbox needs a password hash such as {BLF-CRYPT}$2y$…"
        );
        assert!(
            error("a b@c.d:{PLAIN}x\n").starts_with("users, line 1: \"a b@c.d\" is not an address")
        );
        assert_eq!(
            error("a@b.c:{PLAIN}x\n\nA@B.C:{PLAIN}y\n"),
            "users, line 3: a@b.c is listed again (first on line 1)"
        );
        assert!(error("a@b.c:{PLAIN}x::::::quota_rule=*:storage=5X\n").contains("unknown unit"));
        assert!(error("a@b.c:{PLAIN}x::::::quota_rule=*:storage=10%\n").contains("percentage"));
        assert!(error("a@b.c:{PLAIN}x::::::quota_rule=5G\n").contains("no mailbox mask"));
        assert!(error("a@b.c:{PLAIN}x::::relative/home\n").contains("not an absolute path"));
        assert!(error("a@b.c:{PLAIN}x::::::mail=maildir:/x/%r\n").contains("variable"));
        assert!(error("a@b.c:{PLAIN}x::::::mail=mdbox:~/mdbox\n").contains("not a Maildir"));
        assert!(error("a@b.c:{PLAIN}x:::\\").contains("line 1: the line ends with a backslash"));
    }

    #[test]
    fn unreadable_hashes_are_kept_with_a_note() {
        let entry = one("a@b.c:{NOSUCH}zzz");
        assert_eq!(entry.password, "{NOSUCH}zzz");
        assert!(
            entry.notes[0].contains("unknown password scheme"),
            "{:?}",
            entry.notes
        );
    }
}
