//! Local delivery: the one path every local recipient takes, whether the SMTP or LMTP session
//! delivers before its reply or the queue delivers later.
//!
//! [`LocalDelivery::deliver`] writes the copy's own `Return-Path:` and `Delivered-To:` lines
//! before the spooled message and files it through the store: INBOX without flags by
//! [`SpooledMessage::deliver`] (a link or a copy into `new/`), any other folder or a copy with
//! IMAP flags through the account's folder ([`mailstead_store::Folder::append`], the same
//! write path as IMAP APPEND: `dovecot-keywords`, `:2,S` info, UIDs). Quota applies to every
//! copy. After a delivery that makes the account's usage cross a configured threshold upward
//! the user gets one warning in INBOX and the warning command runs (Dovecot's
//! `quota_warning`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailstead_directory::model::MaildirLayout;
use mailstead_directory::resolve::LocalRecipient;
use mailstead_events::{Event, Kind};
use mailstead_store::{
    FolderLayout, MailStore, MailboxError, QuotaLimit, SpooledMessage, Store, StoreError,
    SystemFlags,
};
use tracing::{info, warn};

/// How long the quota warning command may run.
const WARNING_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How local delivery behaves beyond writing the message.
#[derive(Clone, Debug, Default)]
pub struct LocalConfig {
    /// Thresholds in percent of the byte quota, lowest first or in any order.
    pub quota_warnings: Vec<QuotaWarning>,
    /// Run with the address and the percent as arguments (no shell) when a threshold is
    /// crossed; never as root.
    pub quota_warning_command: Option<PathBuf>,
}

/// One `quota_warning` threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaWarning {
    pub percent: u32,
    /// The body of the message to the user; `{percent}` is replaced. Empty: a default text.
    pub message: String,
}

/// The handle every session and the queue deliver local mail through; cheap to clone.
#[derive(Clone)]
pub struct LocalDelivery {
    inner: Arc<LocalInner>,
}

struct LocalInner {
    store: Store,
    mail: MailStore,
    config: LocalConfig,
}

/// One local recipient of one message.
pub struct LocalRequest<'a> {
    /// The message's id, for the log.
    pub queue_id: &'a str,
    /// The envelope sender, `""` for the null sender.
    pub sender: &'a str,
    /// The mailbox the directory resolved.
    pub recipient: &'a LocalRecipient,
    /// The address as given in `RCPT TO`, when known (Sieve's `envelope :orig "to"`...).
    pub original_to: Option<&'a str>,
    /// Header lines (wire form) after `Return-Path:`/`Delivered-To:`: what submission adds
    /// (`Message-ID:`, `Date:`) or the queue kept.
    pub added: &'a str,
    /// LMTP answers each recipient: a script's refusal becomes that recipient's `550`
    /// instead of a message to the sender.
    pub lmtp: bool,
}

/// What became of one copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalOutcome {
    /// Filed, discarded or sent on as the recipient's filter said: the message is taken.
    Delivered,
    /// The recipient's filter refuses the message (LMTP only): answer `550 5.7.1` with this
    /// reason.
    Refused(String),
}

/// Where one copy goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filing {
    /// The folder name, `/` as the hierarchy separator, UTF-8 (mapped to the account's
    /// modified UTF-7 directory name here); `INBOX` for the INBOX.
    pub folder: String,
    /// IMAP flags: system flags (`\Seen`) and keywords.
    pub flags: Vec<String>,
    /// Create the folder when it is missing; otherwise a missing folder means INBOX.
    pub create: bool,
}

impl Filing {
    /// INBOX, no flags: what a delivery does when nothing says otherwise.
    pub fn inbox() -> Filing {
        Filing {
            folder: "INBOX".to_owned(),
            flags: Vec::new(),
            create: false,
        }
    }
}

impl LocalDelivery {
    /// Folders are opened through their own `MailStore` registry, which shares `store`'s
    /// notifier: a delivery into a folder wakes an IMAP session IDLEing on it.
    pub fn new(store: &Store, config: LocalConfig) -> LocalDelivery {
        LocalDelivery {
            inner: Arc::new(LocalInner {
                store: store.clone(),
                mail: MailStore::new(store),
                config,
            }),
        }
    }

    pub fn config(&self) -> &LocalConfig {
        &self.inner.config
    }

    /// Delivers one copy into the recipient's INBOX, then sends what a crossed quota
    /// threshold owes.
    ///
    /// # Errors
    ///
    /// `OverQuota` (permanent unless the caller prefers a temporary failure), `Io` and the
    /// rest temporary, as [`StoreError::is_temporary`] says.
    pub async fn deliver(
        &self,
        spooled: &SpooledMessage,
        request: &LocalRequest<'_>,
    ) -> Result<LocalOutcome, StoreError> {
        let recipient = request.recipient;
        let address = log_safe_address(recipient);
        let quota = QuotaLimit::bytes(recipient.quota.bytes);
        let before = self.usage_for_warnings(recipient).await;
        let prefix = copy_prefix(request.sender, &address, request.added);
        self.file(
            spooled,
            recipient,
            prefix.as_bytes(),
            None,
            &Filing::inbox(),
        )
        .await?;
        mailstead_events::record(
            Event::now(Kind::Delivered)
                .sender(request.sender)
                .recipient(&address),
        );
        if let Some(before) = before {
            self.after_delivery(recipient, quota, before).await;
        }
        Ok(LocalOutcome::Delivered)
    }

    /// Files one copy: `prefix` (wire form) then, when given, `header` (a replaced header
    /// section, wire form, ending with the empty line) and the spooled body, or else the
    /// spooled message. A folder that does not exist and may not be created, or whose name
    /// the account cannot hold, means INBOX (as Pigeonhole does), logged.
    ///
    /// # Errors
    ///
    /// As [`LocalDelivery::deliver`].
    pub async fn file(
        &self,
        spooled: &SpooledMessage,
        recipient: &LocalRecipient,
        prefix: &[u8],
        header: Option<&[u8]>,
        filing: &Filing,
    ) -> Result<(), StoreError> {
        let maildir = &recipient.location.maildir;
        let quota = QuotaLimit::bytes(recipient.quota.bytes);
        let inbox = filing.folder.eq_ignore_ascii_case("INBOX");
        if inbox && filing.flags.is_empty() && header.is_none() {
            spooled.deliver(maildir, quota, Some(prefix)).await?;
            return Ok(());
        }
        let mut message = match header {
            Some(header) => {
                let mut bytes = prefix.to_vec();
                bytes.extend_from_slice(header);
                let whole = spooled.wire_bytes(b"").await?;
                bytes.extend_from_slice(body_of(&whole));
                bytes
            }
            None => spooled.wire_bytes(prefix).await?,
        };
        message.shrink_to_fit();
        let layout = match recipient.location.layout {
            MaildirLayout::Fs => FolderLayout::Fs,
            MaildirLayout::MaildirPlusPlus => FolderLayout::MaildirPlusPlus,
        };
        let account = self
            .inner
            .mail
            .open_account(maildir, layout, quota)
            .await
            .map_err(|err| store_error(maildir, err))?;
        let name = if inbox {
            "INBOX".to_owned()
        } else {
            mutf7_encode(&filing.folder.replace('.', "/"))
        };
        let folder = match account.open(&name).await {
            Ok(folder) => folder,
            Err(MailboxError::NotFound(_)) if filing.create => {
                match account.create(&name, None).await {
                    Ok(()) | Err(MailboxError::AlreadyExists(_)) => {}
                    Err(err) => {
                        warn!(folder = %mailstead_net::LogSafe(&filing.folder), cause = %err, "cannot create the folder; filing into INBOX")
                    }
                }
                match account.open(&name).await {
                    Ok(folder) => folder,
                    Err(_) => account
                        .open("INBOX")
                        .await
                        .map_err(|err| store_error(maildir, err))?,
                }
            }
            Err(err @ (MailboxError::NotFound(_) | MailboxError::InvalidName { .. })) => {
                info!(folder = %mailstead_net::LogSafe(&filing.folder), cause = %err, "no such folder; filing into INBOX");
                account
                    .open("INBOX")
                    .await
                    .map_err(|err| store_error(maildir, err))?
            }
            Err(err) => return Err(store_error(maildir, err)),
        };
        let (system, keywords) = split_flags(&filing.flags);
        match folder.append(&message, system, &keywords, None).await {
            Ok(_) => Ok(()),
            Err(MailboxError::TooManyKeywords(_) | MailboxError::InvalidKeyword(_)) => {
                // Flags are a nicety; the message is not.
                folder
                    .append(&message, system, &[], None)
                    .await
                    .map(|_| ())
                    .map_err(|err| store_error(maildir, err))
            }
            Err(err) => Err(store_error(maildir, err)),
        }
    }

    /// The usage before a delivery, when a warning could follow it.
    async fn usage_for_warnings(&self, recipient: &LocalRecipient) -> Option<u64> {
        if self.inner.config.quota_warnings.is_empty() {
            return None;
        }
        let limit = recipient.quota.bytes.filter(|&limit| limit > 0)?;
        let quota = QuotaLimit::bytes(Some(limit));
        match mailstead_store::quota_usage(&recipient.location.maildir, quota).await {
            Ok(usage) => Some(usage.map_or(0, |usage| usage.bytes)),
            Err(err) => {
                warn!(cause = %err, "cannot read the quota usage; no quota warning for this delivery");
                None
            }
        }
    }

    /// Warns the user once for each threshold the delivery crossed upward. A usage that falls
    /// back below a threshold and crosses it again warns again; concurrent deliveries may
    /// each see a crossing the other made, so a warning can come twice, never not at all.
    async fn after_delivery(&self, recipient: &LocalRecipient, quota: QuotaLimit, before: u64) {
        let Some(limit) = quota.bytes.filter(|&limit| limit > 0) else {
            return;
        };
        let after = match mailstead_store::quota_usage(&recipient.location.maildir, quota).await {
            Ok(usage) => usage.map_or(0, |usage| usage.bytes),
            Err(err) => {
                warn!(cause = %err, "cannot read the quota usage after delivery");
                return;
            }
        };
        let crossed = crossed_thresholds(&self.inner.config.quota_warnings, limit, before, after);
        // One message, for the highest threshold crossed, as Dovecot runs only that one.
        let Some(warning) = crossed.last() else {
            return;
        };
        let address = recipient.address.to_string();
        info!(to = %mailstead_net::LogSafe(&address), percent = warning.percent, "quota warning");
        if let Err(err) = self.send_warning(recipient, warning).await {
            warn!(to = %mailstead_net::LogSafe(&address), cause = %err, "cannot deliver the quota warning");
        }
        if let Some(command) = &self.inner.config.quota_warning_command {
            run_warning_command(command, &address, warning.percent).await;
        }
    }

    async fn send_warning(
        &self,
        recipient: &LocalRecipient,
        warning: &QuotaWarning,
    ) -> Result<(), StoreError> {
        let address = recipient.address.to_string();
        let bytes = warning_message(&address, warning, crate::now());
        let mut writer = self.inner.store.begin().await?;
        writer.write_all(&bytes).await?;
        let spooled = writer.finish().await?;
        let postmaster = postmaster_of(&address);
        let prefix = copy_prefix(&postmaster, &address, "");
        // The warning itself is exempt from the quota it warns about, as Dovecot's
        // quota-warning script delivers with the quota ignored.
        spooled
            .deliver(
                &recipient.location.maildir,
                QuotaLimit::UNLIMITED,
                Some(prefix.as_bytes()),
            )
            .await?;
        Ok(())
    }
}

/// `Return-Path:` and `Delivered-To:` (the final mailbox, as Postfix's virtual and Dovecot's
/// LMTP add them), then what the caller adds: this copy's own lines, since the spool file is
/// shared by every recipient.
pub fn copy_prefix(sender: &str, address: &str, added: &str) -> String {
    let sender: String = sender.chars().filter(|c| !c.is_control()).collect();
    format!("Return-Path: <{sender}>\r\nDelivered-To: {address}\r\n{added}")
}

fn log_safe_address(recipient: &LocalRecipient) -> String {
    recipient
        .address
        .to_string()
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

fn postmaster_of(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((_, domain)) => format!("postmaster@{domain}"),
        None => "postmaster".to_owned(),
    }
}

/// The thresholds `before..after` crossed upward, lowest first.
fn crossed_thresholds(
    warnings: &[QuotaWarning],
    limit: u64,
    before: u64,
    after: u64,
) -> Vec<&QuotaWarning> {
    let mut crossed: Vec<&QuotaWarning> = warnings
        .iter()
        .filter(|warning| {
            let threshold = u128::from(limit) * u128::from(warning.percent) / 100;
            u128::from(before) < threshold && u128::from(after) >= threshold
        })
        .collect();
    crossed.sort_by_key(|warning| warning.percent);
    crossed
}

fn warning_message(address: &str, warning: &QuotaWarning, now: i64) -> Vec<u8> {
    let percent = warning.percent.to_string();
    let text = if warning.message.trim().is_empty() {
        format!(
            "Your mailbox is now {percent}% full.\r\n\r\nPlease delete messages you no longer need, or mail sent to you may be refused.\r\n"
        )
    } else {
        let text = warning.message.replace("{percent}", &percent);
        let mut wire = String::new();
        for line in text.lines() {
            wire.push_str(line);
            wire.push_str("\r\n");
        }
        wire
    };
    let date = rfc2822(now);
    let postmaster = postmaster_of(address);
    let id = crate::new_id();
    let domain = address.rsplit_once('@').map_or("localhost", |(_, d)| d);
    format!(
        "From: Mail Delivery System <{postmaster}>\r\nTo: <{address}>\r\nSubject: Quota warning: your mailbox is {percent}% full\r\nDate: {date}\r\nMessage-ID: <{id}.quota@{domain}>\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}"
    )
    .into_bytes()
}

pub(crate) fn rfc2822(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|date| {
            date.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_default()
}

/// Runs the warning command with the address and the percent as its arguments, never
/// through a shell and never as root: a server still running as root (it did not drop
/// privileges) logs and skips it.
async fn run_warning_command(command: &Path, address: &str, percent: u32) {
    if running_as_root() {
        warn!(command = %command.display(), "quota warning command not run: the server runs as root");
        return;
    }
    let status = tokio::process::Command::new(command)
        .arg(address)
        .arg(percent.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    // The delivery waits for it (as Dovecot's does): a hanging command must not hold it.
    match tokio::time::timeout(WARNING_COMMAND_TIMEOUT, status).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => {
            warn!(command = %command.display(), status = %status, "quota warning command failed")
        }
        Ok(Err(err)) => {
            warn!(command = %command.display(), cause = %err, "cannot run the quota warning command")
        }
        Err(_) => warn!(command = %command.display(), "quota warning command killed after 30 s"),
    }
}

/// The process's effective user is root: `/proc/self` belongs to it.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// The body of a wire-form message: what follows the first empty line.
fn body_of(message: &[u8]) -> &[u8] {
    match message.windows(4).position(|window| window == b"\r\n\r\n") {
        Some(end) => &message[end + 4..],
        None => b"",
    }
}

/// IMAP system flags and keywords, from imap4flags' list (case-insensitive system flags;
/// `\Recent` and unknown system flags are dropped, as Pigeonhole does).
fn split_flags(flags: &[String]) -> (SystemFlags, Vec<String>) {
    let mut system = SystemFlags::empty();
    let mut keywords = Vec::new();
    for flag in flags {
        match flag.to_ascii_lowercase().as_str() {
            "\\seen" => system.insert(SystemFlags::SEEN),
            "\\answered" => system.insert(SystemFlags::ANSWERED),
            "\\flagged" => system.insert(SystemFlags::FLAGGED),
            "\\deleted" => system.insert(SystemFlags::DELETED),
            "\\draft" => system.insert(SystemFlags::DRAFT),
            other if other.starts_with('\\') => {}
            _ => {
                if !keywords.contains(flag) {
                    keywords.push(flag.clone());
                }
            }
        }
    }
    (system, keywords)
}

fn store_error(maildir: &Path, err: MailboxError) -> StoreError {
    match err {
        MailboxError::OverQuota {
            resource,
            limit,
            used,
            size,
        } => StoreError::OverQuota {
            maildir: maildir.to_path_buf(),
            resource,
            limit,
            used,
            size,
        },
        MailboxError::Io { path, source } => StoreError::Io { path, source },
        other => StoreError::Task(other.to_string()),
    }
}

/// A UTF-8 folder name in modified UTF-7 (RFC 3501 5.1.3), the form IMAP clients send and
/// the directory names Dovecot and the store use on disk.
fn mutf7_encode(name: &str) -> String {
    use base64::Engine;
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|unit| unit.to_be_bytes()).collect();
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
        out.push('&');
        out.push_str(&encoded.replace('/', ","));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_become_modified_utf7() {
        assert_eq!(mutf7_encode("Work"), "Work");
        assert_eq!(mutf7_encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(mutf7_encode("A&B"), "A&-B");
        assert_eq!(mutf7_encode("日本語"), "&ZeVnLIqe-");
    }

    #[test]
    fn flags_split_into_system_flags_and_keywords() {
        let flags: Vec<String> = ["\\Seen", "\\flagged", "$Work", "\\Recent", "$Work"]
            .iter()
            .map(|f| (*f).to_owned())
            .collect();
        let (system, keywords) = split_flags(&flags);
        assert_eq!(system, SystemFlags::SEEN.union(SystemFlags::FLAGGED));
        assert_eq!(keywords, ["$Work"]);
    }

    #[test]
    fn thresholds_cross_upward_only() {
        let warnings = vec![
            QuotaWarning {
                percent: 95,
                message: String::new(),
            },
            QuotaWarning {
                percent: 80,
                message: String::new(),
            },
        ];
        let percents = |before, after| -> Vec<u32> {
            crossed_thresholds(&warnings, 1000, before, after)
                .iter()
                .map(|w| w.percent)
                .collect()
        };
        assert_eq!(percents(700, 850), [80]);
        assert_eq!(percents(700, 960), [80, 95]);
        assert_eq!(percents(850, 900), Vec::<u32>::new());
        assert_eq!(percents(850, 700), Vec::<u32>::new());
        assert_eq!(percents(799, 800), [80]);
    }

    #[test]
    fn warning_text_names_the_percent() {
        let warning = QuotaWarning {
            percent: 80,
            message: "Mailbox {percent}% full\nclean up".to_owned(),
        };
        let text =
            String::from_utf8(warning_message("bob@example.com", &warning, 0)).expect("utf-8");
        assert!(text.starts_with("From: Mail Delivery System <postmaster@example.com>\r\n"));
        assert!(text.contains("Subject: Quota warning: your mailbox is 80% full\r\n"));
        assert!(
            text.ends_with("\r\n\r\nMailbox 80% full\r\nclean up\r\n"),
            "{text}"
        );
    }

    #[test]
    fn body_follows_the_first_empty_line() {
        assert_eq!(body_of(b"A: b\r\n\r\nbody\r\n"), b"body\r\n");
        assert_eq!(body_of(b"A: b\r\n"), b"");
    }
}
