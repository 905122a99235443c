//! Sieve at delivery: the recipient's active script (Pigeonhole's layout, read through the
//! store's [`ScriptStore`]) between the global `before` and `after` scripts, compiled once per
//! file version and evaluated off the async threads; then what the actions need besides
//! filing: redirect limits, the vacation memory, rejection messages and the error notice.
//!
//! Never loses mail: a script that does not compile, fails at run time or cannot be read
//! leaves the message in INBOX, and the user gets one notice per script version.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use mailstead_sieve::{Action, Envelope, Input, Limits, Outcome, Script};
use mailstead_store::ScriptStore;
use sha2::{Digest, Sha256};
use tracing::{error, warn};

/// Compiled scripts kept at most; the cache starts over when full.
const MAX_CACHED_SCRIPTS: usize = 1000;
/// A vacation period is at most this long (Pigeonhole's sieve_vacation_max_period default).
const MAX_VACATION_PERIOD: Duration = Duration::from_secs(90 * 86_400);
/// The header a redirected copy carries, as Pigeonhole adds it; a message that already names
/// the user in it is not redirected again (a loop).
pub(crate) const REDIRECTED_HEADER: &str = "X-Sieve-Redirected-From";
/// More copies of our redirect header than this: a loop through several users.
const MAX_REDIRECT_HOPS: usize = 3;

/// `[sieve]`.
#[derive(Clone, Debug)]
pub struct SieveConfig {
    pub enabled: bool,
    /// Global scripts before and after the user's (sieve_before, sieve_after).
    pub before: Vec<PathBuf>,
    pub after: Vec<PathBuf>,
    pub limits: Limits,
    /// Redirects one user's scripts may send per hour (counted in memory, per process).
    pub max_redirects_per_hour: u32,
    /// The shortest vacation period used, whatever the script asks.
    pub vacation_min_period: Duration,
}

impl Default for SieveConfig {
    fn default() -> Self {
        SieveConfig {
            enabled: true,
            before: Vec::new(),
            after: Vec::new(),
            limits: Limits::default(),
            max_redirects_per_hour: 30,
            vacation_min_period: Duration::from_secs(86_400),
        }
    }
}

/// One version of one script file: a changed file has another key and is compiled again.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ScriptKey {
    pub(crate) path: PathBuf,
    mtime: Option<SystemTime>,
    size: u64,
}

/// Compiled scripts by file version, and the per-user redirect counts.
#[derive(Default)]
pub(crate) struct FilterState {
    cache: Mutex<HashMap<ScriptKey, Result<Script, String>>>,
    redirects: Mutex<HashMap<String, VecDeque<i64>>>,
}

/// A script that failed: what the user is told, once per version.
#[derive(Debug)]
pub(crate) struct ScriptFailure {
    pub(crate) key: ScriptKey,
    /// The script's name as the user knows it.
    pub(crate) name: String,
    pub(crate) message: String,
}

/// What the filters decided for one copy.
#[derive(Debug)]
pub(crate) struct Decision {
    pub(crate) outcome: Outcome,
    /// Set when the user's script failed (the outcome is then a plain keep).
    pub(crate) failure: Option<ScriptFailure>,
}

/// What evaluation reads, owned so it can move to a blocking thread.
pub(crate) struct Request {
    pub(crate) sender: String,
    pub(crate) to: String,
    pub(crate) original_to: Option<String>,
    pub(crate) message: Vec<u8>,
    pub(crate) own_addresses: Vec<String>,
    /// The account, for Sieve's `mailboxexists` (asked one folder at a time, on this
    /// blocking thread); `None` when it cannot be opened: every folder then looks missing.
    pub(crate) account: Option<mailstead_store::Account>,
    pub(crate) layout: mailstead_store::FolderLayout,
}

impl FilterState {
    /// The compiled script of the file at `path`, from the cache when the file is unchanged.
    fn compiled(&self, key: &ScriptKey, source: &str, limits: &Limits) -> Result<Script, String> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = cache.get(key) {
            return found.clone();
        }
        let compiled = mailstead_sieve::compile(source, limits).map_err(|err| err.to_string());
        if cache.len() >= MAX_CACHED_SCRIPTS {
            cache.clear();
        }
        cache.insert(key.clone(), compiled.clone());
        compiled
    }

    /// Counts one redirect for `user`; false when the hourly allowance is used up.
    pub(crate) fn allow_redirect(&self, user: &str, now: i64, per_hour: u32) -> bool {
        let mut counts = self
            .redirects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let sent = counts.entry(user.to_owned()).or_default();
        while sent.front().is_some_and(|&at| at <= now - 3600) {
            sent.pop_front();
        }
        if sent.len() >= per_hour as usize {
            return false;
        }
        sent.push_back(now);
        true
    }
}

/// Runs the global and the user's scripts on one message. Blocking: file reads and CPU.
/// `None` when there is nothing to run.
pub(crate) fn decide(
    state: &FilterState,
    config: &SieveConfig,
    home: &Path,
    request: &Request,
) -> Option<Decision> {
    let before: Vec<Script> = config
        .before
        .iter()
        .filter_map(|path| global_script(state, config, path))
        .collect();
    let after: Vec<Script> = config
        .after
        .iter()
        .filter_map(|path| global_script(state, config, path))
        .collect();
    let mut failure = None;
    let mut user = None;
    let scripts_store = ScriptStore::new(home)
        .with_max_script_bytes(u64::try_from(config.limits.max_script_bytes).unwrap_or(u64::MAX));
    match scripts_store.active() {
        Ok(Some(active)) => {
            let key = script_key(&active.path);
            let name = active
                .name
                .clone()
                .unwrap_or_else(|| ".dovecot.sieve".to_owned());
            match state.compiled(&key, &active.source, &config.limits) {
                Ok(script) => user = Some((script, key, name)),
                Err(message) => failure = Some(ScriptFailure { key, name, message }),
            }
        }
        Ok(None) => {}
        Err(err) => {
            // The script cannot be read: nothing to tell the user about a version of it.
            warn!(home = %home.display(), cause = %err, "cannot read the active Sieve script; skipped");
        }
    }
    if user.is_none() && failure.is_none() && before.is_empty() && after.is_empty() {
        return None;
    }
    let exists = |name: &str| {
        let name = crate::local::folder_name(name, request.layout);
        name == "INBOX"
            || request
                .account
                .as_ref()
                .is_some_and(|account| account.folder_exists(&name))
    };
    let input = Input {
        envelope: Envelope {
            from: &request.sender,
            to: &request.to,
            original_to: request.original_to.as_deref(),
        },
        message: &request.message,
        now: crate::now(),
        zone_offset: 0,
        own_addresses: &request.own_addresses,
        mailbox_exists: &exists,
    };
    // A user script that does not compile is left out; the global ones still run (spam
    // still goes to Junk).
    let globals_only = || -> Vec<&Script> { before.iter().chain(after.iter()).collect() };
    let sequence: Vec<&Script> = match &user {
        Some((script, _, _)) => before
            .iter()
            .chain(std::iter::once(script))
            .chain(after.iter())
            .collect(),
        None => globals_only(),
    };
    let run = |scripts: &[&Script]| {
        if scripts.is_empty() {
            return Ok(keep_outcome());
        }
        mailstead_sieve::evaluate_sequence(scripts, &input, &config.limits)
    };
    let outcome = match run(&sequence) {
        Ok(outcome) => outcome,
        Err(err) => match user {
            // Without the user's script: if that works, the user's script was at fault.
            Some((_, key, name)) => match run(&globals_only()) {
                Ok(outcome) => {
                    failure = Some(ScriptFailure {
                        key,
                        name,
                        message: err.to_string(),
                    });
                    outcome
                }
                Err(global) => {
                    error!(cause = %global, "a global Sieve script failed; keeping the message");
                    keep_outcome()
                }
            },
            None => {
                error!(cause = %err, "a global Sieve script failed; keeping the message");
                keep_outcome()
            }
        },
    };
    Some(Decision { outcome, failure })
}

fn keep_outcome() -> Outcome {
    Outcome {
        actions: vec![Action::Keep { flags: Vec::new() }],
        header: None,
    }
}

fn script_key(path: &Path) -> ScriptKey {
    let meta = std::fs::metadata(path).ok();
    ScriptKey {
        path: path.to_path_buf(),
        mtime: meta.as_ref().and_then(|meta| meta.modified().ok()),
        size: meta.map_or(0, |meta| meta.len()),
    }
}

/// A global script; one that cannot be read or compiled is the administrator's problem: it
/// is logged and skipped, and the user's delivery goes on.
fn global_script(state: &FilterState, config: &SieveConfig, path: &Path) -> Option<Script> {
    let key = script_key(path);
    let source = match read_script(path, config.limits.max_script_bytes) {
        Ok(source) => source,
        Err(err) => {
            error!(script = %path.display(), cause = %err, "cannot read a global Sieve script; skipped");
            return None;
        }
    };
    match state.compiled(&key, &source, &config.limits) {
        Ok(script) => Some(script),
        Err(message) => {
            error!(script = %path.display(), cause = %message, "global Sieve script does not compile; skipped");
            None
        }
    }
}

fn read_script(path: &Path, limit: usize) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(std::io::Error::other("larger than the script size limit"));
    }
    String::from_utf8(bytes).map_err(|_| std::io::Error::other("not UTF-8"))
}

/// The vacation period actually used: the script's, clamped to `[min, 90 days]`.
pub(crate) fn vacation_period(asked: u64, min: Duration) -> Duration {
    Duration::from_secs(asked).clamp(min.min(MAX_VACATION_PERIOD), MAX_VACATION_PERIOD)
}

/// Whether a vacation reply to `sender` under `handle` is due, and if so records it until
/// `now + period`: one small file per (handle, sender) under `~/.mailstead/vacation/`, its
/// name a digest (nothing from the message reaches a path), its content the expiry time,
/// written atomically. Blocking.
pub(crate) fn vacation_due(
    home: &Path,
    handle: &str,
    sender: &str,
    now: i64,
    period: Duration,
) -> std::io::Result<bool> {
    let dir = home.join(".mailstead").join("vacation");
    let mut digest = Sha256::new();
    digest.update(handle.as_bytes());
    digest.update([0]);
    digest.update(sender.to_ascii_lowercase().as_bytes());
    let name: String = digest
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let path = dir.join(&name);
    if let Ok(text) = std::fs::read_to_string(&path)
        && text.trim().parse::<i64>().is_ok_and(|until| until > now)
    {
        return Ok(false);
    }
    write_atomic(
        &dir,
        &name,
        (now + i64::try_from(period.as_secs()).unwrap_or(i64::MAX / 2))
            .to_string()
            .as_bytes(),
    )?;
    // Now and then (one reply in 64), entries whose period is over go.
    if now % 64 == 0 {
        forget_expired(&dir, now);
    }
    Ok(true)
}

/// Removes the vacation entries whose period is over. Best effort.
fn forget_expired(dir: &Path, now: i64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let expired = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .is_some_and(|until| until <= now);
        if expired {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Whether the user was already told about this version of a failing script; records it.
/// Blocking.
pub(crate) fn first_notice(home: &Path, key: &ScriptKey) -> std::io::Result<bool> {
    let dir = home.join(".mailstead").join("sieve-errors");
    let mut digest = Sha256::new();
    digest.update(key.path.as_os_str().as_encoded_bytes());
    let mtime = key
        .mtime
        .and_then(|mtime| mtime.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos());
    digest.update(mtime.to_be_bytes());
    digest.update(key.size.to_be_bytes());
    let name: String = digest
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if dir.join(&name).exists() {
        return Ok(false);
    }
    write_atomic(&dir, &name, b"notified\n")?;
    Ok(true)
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", crate::new_id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Whether redirecting this message from `user` would loop: the user's address is already in
/// one of our redirect headers, or the message went through too many of them.
pub(crate) fn redirect_loops(header: &[u8], user: &str) -> bool {
    let text = String::from_utf8_lossy(header);
    let prefix = format!("{}:", REDIRECTED_HEADER.to_ascii_lowercase());
    let hops: Vec<String> = unfolded_lines(&text)
        .into_iter()
        .filter(|line| line.to_ascii_lowercase().starts_with(&prefix))
        .map(|line| line[prefix.len()..].trim().to_ascii_lowercase())
        .collect();
    let user = user.to_ascii_lowercase();
    hops.len() >= MAX_REDIRECT_HOPS || hops.iter().any(|hop| hop.trim_matches(['<', '>']) == user)
}

fn unfolded_lines(header: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in header.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = lines.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            lines.push(line.to_owned());
        }
    }
    lines
}

/// The value of the first header field `name` (unfolded), if present.
pub(crate) fn header_value(header: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let prefix = format!("{}:", name.to_ascii_lowercase());
    unfolded_lines(&text)
        .into_iter()
        .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
        .map(|line| line[prefix.len()..].trim().to_owned())
}

/// A header field value safe to write: one line, no control characters, and non-ASCII text
/// as an RFC 2047 encoded word.
pub(crate) fn header_text(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.is_ascii() {
        return clean;
    }
    use base64::Engine;
    // Encoded words are at most 75 characters: 45 bytes of text each, cut at characters.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in clean.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|word| {
            format!(
                "=?utf-8?b?{}?=",
                base64::engine::general_purpose::STANDARD.encode(word.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// Text lines with CRLF endings.
fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.lines() {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// The vacation reply (RFC 5230 section 5, RFC 3834): from the user (or `:from`), to the
/// sender, `Auto-Submitted: auto-replied`, threaded on the original.
pub(crate) fn vacation_message(
    vacation: &mailstead_sieve::Vacation,
    user: &str,
    now: i64,
) -> Vec<u8> {
    let from = vacation
        .from
        .as_deref()
        .map(header_text)
        .unwrap_or_else(|| format!("<{user}>"));
    let domain = user.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let mut head = format!(
        "From: {from}\r\nTo: <{}>\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{}.vacation@{domain}>\r\nAuto-Submitted: auto-replied (vacation)\r\n",
        header_text(&vacation.to),
        header_text(&vacation.subject),
        crate::dsn::rfc2822(now),
        crate::new_id(),
    );
    if let Some(id) = &vacation.in_reply_to {
        let id = header_text(id);
        head.push_str(&format!("In-Reply-To: {id}\r\nReferences: {id}\r\n"));
    }
    head.push_str("MIME-Version: 1.0\r\n");
    if vacation.mime {
        // The reason is a whole MIME entity: its own header, an empty line, its body.
        head.push_str(&crlf(&vacation.reason));
    } else {
        head.push_str(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        );
        head.push_str(&crlf(&vacation.reason));
    }
    head.into_bytes()
}

/// The refusal of a `reject` outside LMTP (RFC 5429 section 2.1.1): an MDN to the sender
/// saying the message was deleted, with the reason and the original header.
pub(crate) fn rejection_message(
    user: &str,
    sender: &str,
    reason: &str,
    original_header: &[u8],
    hostname: &str,
    now: i64,
) -> Vec<u8> {
    let boundary = format!("{}/{hostname}", crate::new_id());
    let domain = user.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let subject = header_value(original_header, "Subject").unwrap_or_default();
    let original_id = header_value(original_header, "Message-ID");
    let mut out = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\nTo: <{}>\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{}.reject@{domain}>\r\nAuto-Submitted: auto-replied (rejected)\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification;\r\n\tboundary=\"{boundary}\"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n",
        header_text(sender),
        header_text(&format!("Rejected: {subject}")),
        crate::dsn::rfc2822(now),
        crate::new_id(),
    );
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: 8bit\r\n\r\nYour message to <{user}> was automatically rejected:\r\n{}\r\n",
        crlf(reason)
    ));
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: message/disposition-notification\r\n\r\nReporting-UA: {hostname}; Mailstead Sieve\r\nFinal-Recipient: rfc822; {user}\r\n"
    ));
    if let Some(id) = original_id {
        out.push_str(&format!("Original-Message-ID: {}\r\n", header_text(&id)));
    }
    out.push_str("Disposition: automatic-action/MDN-sent-automatically; deleted\r\n\r\n");
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ));
    let header = String::from_utf8_lossy(original_header);
    out.push_str(&crlf(header.trim_end()));
    out.push_str(&format!("\r\n--{boundary}--\r\n"));
    out.into_bytes()
}

/// The notice a user gets in INBOX when a script fails (Pigeonhole does the same).
pub(crate) fn failure_notice(user: &str, failure: &ScriptFailure, now: i64) -> Vec<u8> {
    let domain = user.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let message = failure.message.replace('\n', "\r\n");
    format!(
        "From: Mail Delivery System <postmaster@{domain}>\r\nTo: <{user}>\r\nSubject: Your Sieve script {} failed\r\nDate: {}\r\nMessage-ID: <{}.sieve@{domain}>\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nYour Sieve script {} failed: {message}\r\n\r\nMessages are delivered to your INBOX until the script is fixed. This notice is sent once for each version of the script.\r\n",
        header_text(&failure.name),
        crate::dsn::rfc2822(now),
        crate::new_id(),
        failure.name,
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_version_is_compiled_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sieve");
        std::fs::write(&path, "keep;").expect("write");
        let state = FilterState::default();
        let limits = Limits::default();
        let key = script_key(&path);
        assert!(state.compiled(&key, "keep;", &limits).is_ok());
        // The same version is not compiled again: the cached result answers, whatever
        // source comes with the key.
        assert!(
            state
                .compiled(&key, "this does not compile", &limits)
                .is_ok()
        );
        // A new version (another size) is.
        std::fs::write(&path, "filein \"x\";").expect("write");
        let changed = script_key(&path);
        assert_ne!(changed, key);
        let err = state
            .compiled(&changed, "filein \"x\";", &limits)
            .expect_err("compile error");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn vacation_periods_are_clamped() {
        let day = Duration::from_secs(86_400);
        assert_eq!(vacation_period(0, day), day);
        assert_eq!(vacation_period(7 * 86_400, day), 7 * day);
        assert_eq!(vacation_period(365 * 86_400, day), 90 * day);
        assert_eq!(vacation_period(60, Duration::ZERO), Duration::from_secs(60));
    }

    #[test]
    fn vacation_memory_answers_once_per_period() {
        let home = tempfile::tempdir().expect("tempdir");
        let period = Duration::from_secs(3600);
        let due = |sender: &str, now| {
            vacation_due(home.path(), "away", sender, now, period).expect("memory")
        };
        assert!(due("a@example.org", 1000));
        assert!(
            !due("A@example.org", 2000),
            "addresses compare without case"
        );
        assert!(due("b@example.org", 2000), "another sender is due");
        assert!(due("a@example.org", 4601), "the period is over");
        assert!(vacation_due(home.path(), "other", "a@example.org", 4602, period).expect("m"));
        // At a multiple of 64 the memory drops every entry whose period is over (all three
        // ended by 8202); only the new one stays.
        let dir = home.path().join(".mailstead/vacation");
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 3);
        assert!(due("c@example.org", 9024));
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 1);
    }

    #[test]
    fn notices_once_per_script_version() {
        let home = tempfile::tempdir().expect("tempdir");
        let script = home.path().join("s.sieve");
        std::fs::write(&script, "broken").expect("write");
        let key = script_key(&script);
        assert!(first_notice(home.path(), &key).expect("first"));
        assert!(!first_notice(home.path(), &key).expect("again"));
        std::fs::write(&script, "broken again").expect("write");
        assert!(first_notice(home.path(), &script_key(&script)).expect("new version"));
    }

    #[test]
    fn redirect_loops_are_seen() {
        let header = b"X-Sieve-Redirected-From: bob@example.com\r\nSubject: x\r\n\r\n";
        assert!(redirect_loops(header, "Bob@example.com"));
        assert!(!redirect_loops(header, "carol@example.com"));
        let many = b"X-Sieve-Redirected-From: a@x\r\nX-Sieve-Redirected-From: b@x\r\nX-Sieve-Redirected-From: c@x\r\n\r\n";
        assert!(redirect_loops(many, "d@x"));
    }

    #[test]
    fn redirect_rate_is_per_user_and_hourly() {
        let state = FilterState::default();
        assert!(state.allow_redirect("bob", 0, 2));
        assert!(state.allow_redirect("bob", 10, 2));
        assert!(!state.allow_redirect("bob", 20, 2));
        assert!(state.allow_redirect("carol", 20, 2));
        assert!(state.allow_redirect("bob", 3601, 2));
    }

    #[test]
    fn header_text_is_one_line_and_encoded() {
        assert_eq!(header_text("a\r\nb"), "a  b");
        assert_eq!(header_text("Grüße"), "=?utf-8?b?R3LDvMOfZQ==?=");
    }

    #[test]
    fn vacation_reply_has_the_rfc_3834_fields() {
        let vacation = mailstead_sieve::Vacation {
            to: "alice@example.org".to_owned(),
            handle: "h".to_owned(),
            period_seconds: 86_400,
            from: None,
            subject: "Auto: hello".to_owned(),
            reason: "I am away.".to_owned(),
            mime: false,
            in_reply_to: Some("<1@example.org>".to_owned()),
        };
        let text =
            String::from_utf8(vacation_message(&vacation, "bob@example.com", 0)).expect("utf-8");
        for field in [
            "From: <bob@example.com>\r\n",
            "To: <alice@example.org>\r\n",
            "Subject: Auto: hello\r\n",
            "Auto-Submitted: auto-replied (vacation)\r\n",
            "In-Reply-To: <1@example.org>\r\n",
            "References: <1@example.org>\r\n",
        ] {
            assert!(text.contains(field), "{field:?} in {text}");
        }
        assert!(text.ends_with("\r\n\r\nI am away.\r\n"));
    }

    #[test]
    fn rejection_is_an_mdn_with_the_reason() {
        let text = String::from_utf8(rejection_message(
            "bob@example.com",
            "alice@example.org",
            "go away",
            b"Subject: hi\nMessage-ID: <2@x>\n",
            "mx.example.com",
            0,
        ))
        .expect("utf-8");
        assert!(text.contains("report-type=disposition-notification"));
        assert!(text.contains("go away\r\n"));
        assert!(text.contains("Original-Message-ID: <2@x>\r\n"));
        assert!(text.contains("Disposition: automatic-action/MDN-sent-automatically; deleted"));
    }
}
