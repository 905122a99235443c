//! Mailstead's configuration: one TOML file in which every key is optional.
//!
//! The server must start with no file at all, so every key has a default and
//! `Config::default()` is exactly what an empty file gives. Sections reject
//! unknown keys (`deny_unknown_fields`) because a misspelt key silently
//! falling back to its default is the worst kind of configuration bug.
//!
//! Values that follow from others (the default SQLite URL, the mailbox
//! templates, the self-signed certificate's directory) are not stored a second
//! time: methods such as [`Config::directory_url`] compute them, so changing
//! `server.data_dir` moves all of them together.
//!
//! Database URLs may carry a password, so the URL type redacts it in `Debug`
//! and `Display`, and parse errors are redacted before they are shown.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// File names of the self-signed certificate pair below [`Config::tls_dir`].
pub const SELF_SIGNED_CERT_FILE: &str = "cert.pem";
/// See [`SELF_SIGNED_CERT_FILE`].
pub const SELF_SIGNED_KEY_FILE: &str = "key.pem";

/// Everything that can go wrong while loading or validating a config file.
///
/// Messages name the file and the exact key (`directory.url`, `tls`, ...) and
/// say how to fix it, because they are what an administrator sees first.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// TOML syntax, type and unknown-key errors. `message` is toml's own
    /// report (line, column, snippet) with any URL password redacted, which
    /// is why the original error is not kept as a source. `key` is the
    /// dotted key on the offending line, when there is one.
    #[error("{}: {}{message}", .path.display(), key_prefix(.key.as_deref()))]
    Parse {
        path: PathBuf,
        key: Option<String>,
        message: String,
    },

    /// A value that parsed but makes no sense; `key` is the dotted key path.
    #[error("{}{key}: {message}", file_prefix(.path.as_deref()))]
    Invalid {
        path: Option<PathBuf>,
        key: String,
        message: String,
    },

    #[error(
        "cannot make {key} = {:?} absolute: the current directory is unavailable: {source}",
        .value.display()
    )]
    CurrentDir {
        key: &'static str,
        value: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn key_prefix(key: Option<&str>) -> String {
    key.map(|key| format!("{key}: ")).unwrap_or_default()
}

fn file_prefix(path: Option<&Path>) -> String {
    match path {
        Some(path) => format!("{}: ", path.display()),
        None => String::new(),
    }
}

/// The whole configuration. Every field has a default; see the example file
/// `mailstead.example.toml` at the repository root for what each key means.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    pub directory: DirectorySection,
    pub tls: TlsSection,
    pub log: LogSection,
    pub smtp: SmtpSection,
    pub lmtp: LmtpSection,
    pub imap: ImapSection,
    pub pop3: Pop3Section,
    pub managesieve: ManageSieveSection,
    pub http: HttpSection,
    pub limits: LimitsSection,
    pub auth: AuthSection,
    pub submission: SubmissionSection,
    pub queue: QueueSection,
    pub stats: StatsSection,
    pub sieve: SieveSection,
    pub quota: QuotaSection,
}

/// `[sieve]`: the users' filters, run at every local delivery.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SieveSection {
    /// Run the recipient's active script (`~/.dovecot.sieve`) and the global ones.
    pub enabled: bool,
    /// Scripts run before the user's (Pigeonhole's sieve_before), e.g. spam to Junk.
    pub before: Vec<PathBuf>,
    /// Scripts run after the user's (sieve_after), while the keep is still in force.
    pub after: Vec<PathBuf>,
    /// Largest script accepted, in bytes (sieve_max_script_size).
    pub max_script_size: usize,
    /// Most actions one delivery may carry out (sieve_max_actions).
    pub max_actions: usize,
    /// Most redirects of one message (sieve_max_redirects).
    pub max_redirects: usize,
    /// Most redirects one user's scripts may send in an hour (counted in memory).
    pub max_redirects_per_hour: u32,
    /// The shortest vacation period a script may ask for (sieve_vacation_min_period);
    /// at most 90 days are ever used.
    #[serde(deserialize_with = "deserialize_duration")]
    pub vacation_min_period: Duration,
}

impl Default for SieveSection {
    fn default() -> Self {
        SieveSection {
            enabled: true,
            before: Vec::new(),
            after: Vec::new(),
            max_script_size: 1024 * 1024,
            max_actions: 32,
            max_redirects: 4,
            max_redirects_per_hour: 30,
            vacation_min_period: Duration::from_secs(86_400),
        }
    }
}

/// `[quota]`: warnings as Dovecot's quota_warning sends them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaSection {
    /// `[{ percent = 80 }, { percent = 95, message = "..." }]`: a delivery that takes the
    /// usage over a threshold sends the user one message (from postmaster@ the domain).
    pub warnings: Vec<QuotaWarningEntry>,
    /// Run with the address and the percent as arguments (no shell) at each warning.
    pub warning_command: Option<PathBuf>,
}

/// One threshold of `[quota] warnings`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaWarningEntry {
    /// Percent of the byte quota, 1 to 100.
    pub percent: u32,
    /// The text of the message; `{percent}` is replaced. Empty: a default text.
    #[serde(default)]
    pub message: String,
}

/// `[submission]`: mail clients sending (RFC 6409, RFC 8314).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubmissionSection {
    /// Addresses for submission with STARTTLS, like "0.0.0.0:587"; empty turns them off.
    pub listen: Vec<String>,
    /// Addresses for submission over implicit TLS, like "0.0.0.0:465".
    pub listen_tls: Vec<String>,
    /// Hold every `From:` header address to the same rule as MAIL FROM: the login must own
    /// it (an address of its own, an alias it is a sender of, or their alias-domain forms).
    pub check_from_header: bool,
}

impl Default for SubmissionSection {
    fn default() -> Self {
        SubmissionSection {
            listen: vec!["0.0.0.0:587".to_owned()],
            listen_tls: vec!["0.0.0.0:465".to_owned()],
            check_from_header: true,
        }
    }
}

/// `[queue]`: outbound delivery, retries and bounces.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSection {
    /// First retry after a temporary failure; each next one waits twice as long…
    #[serde(deserialize_with = "deserialize_duration")]
    pub min_backoff: Duration,
    /// …up to this (Postfix: 300s and 4000s).
    #[serde(deserialize_with = "deserialize_duration")]
    pub max_backoff: Duration,
    /// A message still undelivered after this long bounces (Postfix's maximal_queue_lifetime).
    #[serde(deserialize_with = "deserialize_duration")]
    pub max_age: Duration,
    /// The sender is warned once when a message is still queued after this long; "0s": never.
    #[serde(deserialize_with = "deserialize_duration")]
    pub delay_warning: Duration,
    /// Every remote domain without a transport goes here instead of to its MX (Postfix's
    /// relayhost), e.g. "[smtp.provider.net]:587"; empty: deliver by MX.
    pub relay_host: String,
    /// A file (readable by root only) holding "login password" on one line, for AUTH at
    /// relay_host (only ever sent over TLS).
    pub relay_auth_file: Option<PathBuf>,
    /// DNS servers ("127.0.0.1:53") to ask instead of /etc/resolv.conf.
    pub name_servers: Vec<String>,
    /// The name servers validate DNSSEC (a local unbound, say): trust their AD bit, which
    /// DANE needs. Off by default, as Postfix's smtp_dns_support_level.
    pub dnssec: bool,
    /// Extra trust anchors (PEM) for the verify and secure TLS policies, e.g. a private CA.
    pub ca_file: Option<PathBuf>,
    /// The port of remote MX hosts.
    pub smtp_port: u16,
    /// Outbound connections at once, in all and to one destination.
    pub max_connections: usize,
    pub max_connections_per_destination: usize,
    /// Messages being tried at once.
    pub max_active: usize,
    #[serde(deserialize_with = "deserialize_duration")]
    pub connect_timeout: Duration,
    #[serde(deserialize_with = "deserialize_duration")]
    pub command_timeout: Duration,
    /// Where RCPT TO:<postmaster> goes; empty: postmaster@ the first hosted domain.
    pub postmaster: String,
}

impl Default for QueueSection {
    fn default() -> Self {
        QueueSection {
            min_backoff: Duration::from_secs(300),
            max_backoff: Duration::from_secs(4000),
            max_age: Duration::from_secs(5 * 86_400),
            delay_warning: Duration::from_secs(4 * 3600),
            relay_host: String::new(),
            relay_auth_file: None,
            name_servers: Vec::new(),
            dnssec: false,
            ca_file: None,
            smtp_port: 25,
            max_connections: 100,
            max_connections_per_destination: 20,
            max_active: 100,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            postmaster: String::new(),
        }
    }
}

/// `[auth]`: the failure penalty of the login service, shared by every protocol.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// How long a failed login counts against its client address and its account.
    #[serde(deserialize_with = "deserialize_duration")]
    pub failure_window: Duration,
    /// Failures from one address (IPv6: its /64) in the window after which its logins are
    /// refused without checking the password until the window lets them go.
    pub max_failures_per_address: u32,
    /// Failures on one account in the window after which the addresses that failed against it
    /// are refused on it (an address that never failed is still checked).
    pub max_failures_per_account: u32,
    /// Delay before a failure's answer; it doubles with each recent failure of the address.
    #[serde(deserialize_with = "deserialize_duration")]
    pub failure_delay: Duration,
    /// The longest a failure's answer is delayed.
    #[serde(deserialize_with = "deserialize_duration")]
    pub max_failure_delay: Duration,
    /// Clients that log in for many users (a webmail, a proxy), like Dovecot's
    /// `login_trusted_networks`: their failures neither block nor slow down their address.
    pub trusted_networks: Vec<String>,
    /// How long a successful login is remembered so the same password skips the slow hash
    /// (Dovecot's `auth_cache_ttl`); "0s" turns the cache off.
    #[serde(deserialize_with = "deserialize_duration")]
    pub cache_ttl: Duration,
    /// Logins remembered at most; 0 turns the cache off.
    pub cache_size: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            failure_window: Duration::from_secs(15 * 60),
            max_failures_per_address: 10,
            max_failures_per_account: 10,
            failure_delay: Duration::from_secs(1),
            max_failure_delay: Duration::from_secs(15),
            trusted_networks: Vec::new(),
            cache_ttl: mailstead_auth::DEFAULT_CACHE_TTL,
            cache_size: mailstead_auth::DEFAULT_CACHE_SIZE,
        }
    }
}

/// `[imap]`: the IMAP listeners.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImapSection {
    /// Addresses for IMAP with STARTTLS, like "0.0.0.0:143"; empty turns them off.
    pub listen: Vec<String>,
    /// Addresses for IMAP over implicit TLS, like "0.0.0.0:993".
    pub listen_tls: Vec<String>,
    /// Accept LOGIN/AUTHENTICATE without TLS from 127.0.0.0/8 and ::1 (webmail on the same
    /// host, local tools). Everywhere else passwords need TLS: LOGINDISABLED until STARTTLS.
    pub login_on_loopback_without_tls: bool,
    /// Logged-in sessions one user may hold at once (Thunderbird opens up to 5 per account).
    pub max_connections_per_user: u32,
    /// Connections one client address may hold at once.
    pub max_connections_per_ip: u32,
    /// How long a logged-in client may stay silent; RFC 3501 asks for at least 30 minutes.
    #[serde(deserialize_with = "deserialize_duration")]
    pub idle_timeout: Duration,
    /// How often an IDLE session looks at its folder when no inotify watch could be set
    /// (Dovecot's mailbox_idle_check_interval).
    #[serde(deserialize_with = "deserialize_duration")]
    pub idle_check_interval: Duration,
    /// Longest command line without its literals (Dovecot's imap_max_line_length).
    pub max_line_length: usize,
    /// Largest message APPEND takes, advertised as APPENDLIMIT. Apart from
    /// `[limits] max_message_size`: users save messages they already have (a sent
    /// message with its attachments, a moved archive), which SMTP's limit did not bound.
    pub max_append_size: u64,
    /// RFC 4314 ACLs in Dovecot's `dovecot-acl` files: Dovecot's `acl` setting, e.g.
    /// "vfile" (per-folder files only) or "vfile:/var/vmail/conf.d/%d/acls" (and global
    /// ACLs: a directory of per-mailbox files, `%d` the user's domain, or one file of
    /// `MAILBOX-PATTERN IDENTIFIER RIGHTS` lines). Unset: no ACLs.
    pub acl: Option<String>,
    /// `[[imap.namespace]]`: namespaces beside the user's own folders (RFC 2342).
    pub namespace: Vec<NamespaceSection>,
}

/// One `[[imap.namespace]]`, as Dovecot's `namespace { }` blocks: `type = "shared"` (other
/// users' folders as `Shared/user@domain/Folder`) or `type = "public"` (a Maildir tree every
/// user may open as `Public/Folder`, as its ACL files allow).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceSection {
    /// "shared" or "public".
    #[serde(rename = "type")]
    pub kind: String,
    /// E.g. "Shared/": ends with "/".
    pub prefix: String,
    /// Public namespace only: the Maildir tree.
    pub location: Option<String>,
    /// Public namespace only: "fs" (default) or "maildir++".
    pub layout: Option<String>,
    /// Public namespace only: the per-user index directory (`~/public`).
    pub private_index: Option<String>,
    /// Whether LIST shows the namespace (default true).
    pub list: Option<bool>,
    /// Whether the namespace keeps its own subscriptions.
    pub subscriptions: Option<bool>,
}

impl Default for ImapSection {
    fn default() -> Self {
        ImapSection {
            listen: vec!["0.0.0.0:143".to_owned()],
            listen_tls: vec!["0.0.0.0:993".to_owned()],
            login_on_loopback_without_tls: false,
            max_connections_per_user: 20,
            max_connections_per_ip: 200,
            idle_timeout: Duration::from_secs(30 * 60),
            idle_check_interval: Duration::from_secs(30),
            max_line_length: 64 * 1024,
            // 50 MiB: what Stalwart allows, 5x SMTP's default; Dovecot's unlimited would let
            // one client fill the disk's spool in one command.
            max_append_size: 50 * 1024 * 1024,
            acl: None,
            namespace: Vec::new(),
        }
    }
}

/// `[pop3]`: the POP3 listeners, serving each account's INBOX.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pop3Section {
    /// Addresses for POP3 with STLS, like "0.0.0.0:110"; empty turns them off.
    pub listen: Vec<String>,
    /// Addresses for POP3 over implicit TLS, like "0.0.0.0:995".
    pub listen_tls: Vec<String>,
    /// Accept USER/PASS and AUTH without TLS from 127.0.0.0/8 and ::1, as
    /// `[imap] login_on_loopback_without_tls` does for IMAP.
    pub login_on_loopback_without_tls: bool,
    /// Logged-in sessions one user may hold at once (Dovecot's mail_max_userip_connections);
    /// one more login is answered `-ERR [IN-USE]`.
    pub max_connections_per_user: u32,
    /// Connections one client address may hold at once.
    pub max_connections_per_ip: u32,
    /// How long a logged-in client may stay silent; RFC 1939 asks for at least 10 minutes.
    #[serde(deserialize_with = "deserialize_duration")]
    pub idle_timeout: Duration,
}

impl Default for Pop3Section {
    fn default() -> Self {
        Pop3Section {
            listen: vec!["0.0.0.0:110".to_owned()],
            listen_tls: vec!["0.0.0.0:995".to_owned()],
            login_on_loopback_without_tls: false,
            max_connections_per_user: 10,
            max_connections_per_ip: 200,
            idle_timeout: Duration::from_secs(10 * 60),
        }
    }
}

/// `[managesieve]`: the ManageSieve listeners (RFC 5804), where users edit their Sieve
/// scripts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManageSieveSection {
    /// Addresses for ManageSieve with STARTTLS, like "0.0.0.0:4190"; empty turns it off.
    pub listen: Vec<String>,
    /// Accept AUTHENTICATE without TLS from 127.0.0.0/8 and ::1, as
    /// `[imap] login_on_loopback_without_tls` does for IMAP.
    pub login_on_loopback_without_tls: bool,
    /// Scripts one user may have (Pigeonhole's sieve_quota_max_scripts).
    pub max_scripts: u32,
    /// Largest script in bytes (Pigeonhole's sieve_max_script_size), for uploads and for
    /// the compiler.
    pub max_script_size: u64,
    /// Total size of one user's scripts in bytes (Pigeonhole's sieve_quota_max_storage).
    pub max_storage: u64,
    /// Logged-in sessions one user may hold at once.
    pub max_connections_per_user: u32,
    /// Connections one client address may hold at once.
    pub max_connections_per_ip: u32,
}

impl Default for ManageSieveSection {
    fn default() -> Self {
        ManageSieveSection {
            listen: vec!["0.0.0.0:4190".to_owned()],
            login_on_loopback_without_tls: false,
            max_scripts: 20,
            max_script_size: 1024 * 1024,
            max_storage: 10 * 1024 * 1024,
            max_connections_per_user: 10,
            max_connections_per_ip: 50,
        }
    }
}

/// `[http]`: health, readiness, metrics and client autoconfiguration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Addresses to serve HTTP on; plain HTTP on loopback, HTTPS (the server's certificate)
    /// on any other address. Empty turns it off.
    pub listen: Vec<String>,
    /// How long a request's head may take to arrive (an idle keep-alive connection is
    /// closed after it too) and how long an answer may take.
    #[serde(deserialize_with = "deserialize_duration")]
    pub request_timeout: Duration,
    /// Connections one client address may hold at once.
    pub max_connections_per_ip: u32,
    /// The MTA-STS policy's mode (RFC 8461): "enforce", "testing" or "none".
    pub mta_sts_mode: MtaStsMode,
    /// How long senders may cache the MTA-STS policy.
    #[serde(deserialize_with = "deserialize_duration")]
    pub mta_sts_max_age: Duration,
    /// Networks that may read `/metrics` and `/readyz` (a Prometheus server, a load
    /// balancer's health check); others get 403. Loopback only by default.
    pub metrics_allow: Vec<String>,
}

/// `[http] mta_sts_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MtaStsMode {
    Enforce,
    Testing,
    None,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: vec!["127.0.0.1:8080".to_owned()],
            request_timeout: Duration::from_secs(30),
            max_connections_per_ip: 100,
            mta_sts_mode: MtaStsMode::Testing,
            mta_sts_max_age: Duration::from_secs(7 * 86_400),
            metrics_allow: vec!["127.0.0.0/8".to_owned(), "::1".to_owned()],
        }
    }
}

/// `[stats]`: mailbox sizes over time and the record of mail events.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsSection {
    /// How often `serve` measures every Maildir into MUM's `size_measurements`; "0s" turns it
    /// off. An hour by default: charts by day and week need no finer points, and each round
    /// reads every mailbox's `maildirsize` (or lists its folders).
    #[serde(deserialize_with = "deserialize_duration")]
    pub size_interval: Duration,
    /// How long size measurements are kept (MUM's `size-measurements:delete-old`: a year).
    #[serde(deserialize_with = "deserialize_duration")]
    pub size_keep: Duration,
    /// How long the daily files of mail events (`<data_dir>/events/`, what `mailstead report`
    /// and the traffic charts read) are kept.
    #[serde(deserialize_with = "deserialize_duration")]
    pub events_keep: Duration,
}

impl Default for StatsSection {
    fn default() -> Self {
        StatsSection {
            size_interval: Duration::from_secs(60 * 60),
            size_keep: Duration::from_secs(365 * 86_400),
            events_keep: Duration::from_secs(31 * 86_400),
        }
    }
}

/// `[smtp]`: the inbound MX listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSection {
    /// Addresses to accept SMTP on, like "0.0.0.0:25"; empty turns SMTP off.
    pub listen: Vec<String>,
    /// Postfix's reject_non_fqdn_sender.
    pub reject_non_fqdn_sender: bool,
    /// Postfix's reject_non_fqdn_recipient.
    pub reject_non_fqdn_recipient: bool,
    /// Postfix's smtpd_soft_error_limit: errors after which each error reply
    /// waits `error_sleep_time`.
    pub soft_error_limit: u32,
    /// Postfix's smtpd_hard_error_limit: errors after which the session is
    /// closed with 421.
    pub hard_error_limit: u32,
    /// Postfix's smtpd_error_sleep_time.
    #[serde(deserialize_with = "deserialize_duration")]
    pub error_sleep_time: Duration,
    /// Dovecot's quota_full_tempfail: over quota answers 452 4.2.2 (try again
    /// later) instead of 552 5.2.2 (bounce); applies to LMTP too.
    pub quota_full_tempfail: bool,
}

impl Default for SmtpSection {
    fn default() -> Self {
        SmtpSection {
            listen: vec!["0.0.0.0:25".to_owned()],
            reject_non_fqdn_sender: true,
            reject_non_fqdn_recipient: true,
            soft_error_limit: 10,
            hard_error_limit: 20,
            error_sleep_time: Duration::from_secs(1),
            quota_full_tempfail: false,
        }
    }
}

/// `[lmtp]`: LMTP listeners for a local MTA, "127.0.0.1:24" or "unix:/path".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmtpSection {
    pub listen: Vec<String>,
}

/// `[limits]`: what one SMTP/LMTP client may make the server do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest message in bytes (Postfix's message_size_limit).
    pub max_message_size: u64,
    pub max_recipients: u32,
    pub max_connections_per_ip: u32,
    /// Connections of every listener together (SMTP, LMTP, IMAP); when full, the oldest
    /// idle one not logged in is closed to make room. Lowered at start to what the
    /// open-file limit holds.
    pub max_connections: u32,
    #[serde(deserialize_with = "deserialize_duration")]
    pub command_timeout: Duration,
    #[serde(deserialize_with = "deserialize_duration")]
    pub data_timeout: Duration,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_message_size: 10_240_000,
            max_recipients: 1000,
            max_connections_per_ip: 50,
            max_connections: 20_000,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// The name this server uses for itself (SMTP greeting, certificate).
    pub hostname: String,
    /// Root of everything Mailstead writes; absolute after loading.
    pub data_dir: PathBuf,
    /// The account `serve` runs as once its ports are bound, when started as root (created
    /// with useradd when missing). Never root.
    pub user: String,
    pub group: String,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            hostname: system_hostname(),
            data_dir: PathBuf::from("data"),
            user: "mailstead".to_owned(),
            group: "mailstead".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectorySection {
    /// `None` means SQLite at `<data_dir>/mailstead.db`; use
    /// [`Config::directory_url`] rather than reading this field.
    pub url: Option<DatabaseUrl>,
    pub max_connections: u32,
    /// Number of cached lookup answers; 0 disables the cache.
    pub cache_capacity: u64,
    /// Upper bound on staleness should the database's change triggers be
    /// missing (every writer bumps the change counter through them).
    #[serde(deserialize_with = "deserialize_duration")]
    pub cache_ttl: Duration,
    /// The same bound for refusals (unknown recipient or login); at most
    /// `cache_ttl`.
    #[serde(deserialize_with = "deserialize_duration")]
    pub negative_cache_ttl: Duration,
    /// How often the directory's change counter is polled.
    #[serde(deserialize_with = "deserialize_duration")]
    pub change_poll: Duration,
    /// A set of characters, like Postfix's `recipient_delimiter`; "" disables.
    pub recipient_delimiter: String,
    pub expansion_limit: u32,
    pub recursion_limit: u32,
    /// `None` means `<data_dir>/mailboxes/%d/%n`; use
    /// [`Config::homedir_template`].
    pub homedir_template: Option<String>,
    /// `None` means `maildir:<data_dir>/mailboxes/%d/%n/Maildir:LAYOUT=fs`;
    /// use [`Config::maildir_template`].
    pub maildir_template: Option<String>,
}

impl Default for DirectorySection {
    fn default() -> Self {
        DirectorySection {
            url: None,
            max_connections: 8,
            cache_capacity: 100_000,
            cache_ttl: mailstead_directory::DEFAULT_CACHE_TTL,
            negative_cache_ttl: mailstead_directory::DEFAULT_NEGATIVE_CACHE_TTL,
            change_poll: Duration::from_millis(250),
            recipient_delimiter: "+".to_owned(),
            expansion_limit: 1000,
            recursion_limit: 1000,
            homedir_template: None,
            maildir_template: None,
        }
    }
}

/// `cert` and `key` are both set or both unset; unset means a self-signed
/// certificate under `<data_dir>/tls/`. Absolute after loading.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// How often the running server looks whether the certificate or key
    /// file changed (and reloads them); zero turns the check off (SIGHUP
    /// still reloads).
    #[serde(deserialize_with = "deserialize_duration")]
    pub reload_check: Duration,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            cert: None,
            key: None,
            reload_check: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// A `tracing_subscriber::EnvFilter` directive string.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".to_owned(),
        }
    }
}

impl Default for Config {
    /// The configuration of an empty file. If the current directory cannot
    /// be read, `data_dir` stays relative (only [`Config::load`] can report
    /// that as an error).
    fn default() -> Self {
        let config = Config {
            server: ServerSection::default(),
            directory: DirectorySection::default(),
            tls: TlsSection::default(),
            log: LogSection::default(),
            smtp: SmtpSection::default(),
            lmtp: LmtpSection::default(),
            imap: ImapSection::default(),
            pop3: Pop3Section::default(),
            managesieve: ManageSieveSection::default(),
            http: HttpSection::default(),
            limits: LimitsSection::default(),
            auth: AuthSection::default(),
            submission: SubmissionSection::default(),
            queue: QueueSection::default(),
            stats: StatsSection::default(),
            sieve: SieveSection::default(),
            quota: QuotaSection::default(),
        };
        match config.clone().make_paths_absolute() {
            Ok(absolute) => absolute,
            Err(_) => config,
        }
    }
}

/// The kind of SQL database behind `directory.url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
    MySql,
}

impl DatabaseKind {
    /// The schemes sqlx accepts for each kind (sqlx's `AnyKind` uses the
    /// same list), so anything valid here also connects there.
    fn from_scheme(scheme: &str) -> Option<DatabaseKind> {
        match scheme {
            "sqlite" => Some(DatabaseKind::Sqlite),
            "postgres" | "postgresql" => Some(DatabaseKind::Postgres),
            "mysql" | "mariadb" => Some(DatabaseKind::MySql),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgres",
            DatabaseKind::MySql => "mysql",
        }
    }
}

impl fmt::Display for DatabaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A database URL that may contain a password. `Debug` and `Display` show it
/// with the password replaced by `***`; [`DatabaseUrl::expose`] gives the
/// real one for connecting.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL with its password, for handing to the database driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_secrets(&self.0)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Config {
    /// Loads `path`, or the built-in defaults when `path` is `None`, and
    /// validates the result.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and key of the first problem found.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Config::from_toml_str("", None),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Config::from_toml_str(&text, Some(path))
            }
        }
    }

    /// Parses and validates TOML text; `path` is only used in messages
    /// (`None` for text that did not come from a file).
    ///
    /// # Errors
    /// As for [`Config::load`].
    pub fn from_toml_str(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.map_or_else(|| PathBuf::from("<config>"), Path::to_owned),
            key: error.span().and_then(|span| key_at(text, span.start)),
            // The snippet in toml's message may quote a database URL, and
            // serde's Rust type names mean nothing to an administrator.
            message: redact_secrets(error.to_string().trim_end())
                .replace("expected u32", "expected a whole number")
                .replace("expected u64", "expected a whole number"),
        })?;
        let config = config.make_paths_absolute()?;
        config
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.map(Path::to_owned),
                key,
                message,
            })?;
        Ok(config)
    }

    /// Relative paths are taken relative to the current directory *now*, so
    /// that templates and URLs derived from them do not change meaning if the
    /// process later changes directory.
    fn make_paths_absolute(mut self) -> Result<Config, ConfigError> {
        fn absolute(key: &'static str, path: &Path) -> Result<PathBuf, ConfigError> {
            // An empty path is reported by validation, with its key.
            if path.as_os_str().is_empty() || path.is_absolute() {
                return Ok(path.to_owned());
            }
            std::path::absolute(path).map_err(|source| ConfigError::CurrentDir {
                key,
                value: path.to_owned(),
                source,
            })
        }
        self.server.data_dir = absolute("server.data_dir", &self.server.data_dir)?;
        if let Some(cert) = &self.tls.cert {
            self.tls.cert = Some(absolute("tls.cert", cert)?);
        }
        if let Some(key) = &self.tls.key {
            self.tls.key = Some(absolute("tls.key", key)?);
        }
        Ok(self)
    }

    /// The server's own host name.
    pub fn hostname(&self) -> &str {
        &self.server.hostname
    }

    /// The absolute data directory.
    pub fn data_dir(&self) -> &Path {
        &self.server.data_dir
    }

    /// Where the daily files of mail events go (`mailstead report`, the traffic charts).
    pub fn events_dir(&self) -> PathBuf {
        self.server.data_dir.join("events")
    }

    /// The directory database URL, password included: for the driver only.
    /// Never log this; use [`Config::directory_url_redacted`].
    pub fn directory_url(&self) -> String {
        match &self.directory.url {
            Some(url) => url.expose().to_owned(),
            // The directory crate adds `mode=rwc` and creates the parent
            // directory, so this works on a fresh data directory.
            None => format!(
                "sqlite://{}",
                self.data_dir().join("mailstead.db").display()
            ),
        }
    }

    /// [`Config::directory_url`] with any password replaced by `***`.
    pub fn directory_url_redacted(&self) -> String {
        redact_secrets(&self.directory_url())
    }

    /// The database kind of [`Config::directory_url`]. Validation guarantees
    /// a known scheme; SQLite is the answer for anything else.
    pub fn directory_kind(&self) -> DatabaseKind {
        url_scheme(&self.directory_url())
            .and_then(DatabaseKind::from_scheme)
            .unwrap_or(DatabaseKind::Sqlite)
    }

    /// MUM's `MAILBOXES_HOMEDIR`-style template (`%d` domain, `%n` local
    /// part, `%u` full address).
    pub fn homedir_template(&self) -> String {
        match &self.directory.homedir_template {
            Some(template) => template.clone(),
            None => format!("{}/mailboxes/%d/%n", self.data_dir().display()),
        }
    }

    /// MUM's `MAILBOXES_MAILDIR`-style template (`maildir:PATH[:OPTIONS]`,
    /// where PATH may start with `~/` for the home directory).
    pub fn maildir_template(&self) -> String {
        match &self.directory.maildir_template {
            Some(template) => template.clone(),
            None => format!(
                "maildir:{}/mailboxes/%d/%n/Maildir:LAYOUT=fs",
                self.data_dir().display()
            ),
        }
    }

    /// The configured certificate and key, if `[tls]` sets them.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        match (&self.tls.cert, &self.tls.key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }

    /// Where the self-signed certificate lives when `[tls]` is not set.
    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir().join("tls")
    }

    /// Checks every value; the error is `(dotted key, message)`.
    fn validate(&self) -> Result<(), (String, String)> {
        let fail = |key: &str, message: String| Err((key.to_owned(), message));

        // [[imap.namespace]]
        for kind in ["shared", "public"] {
            let count = self
                .imap
                .namespace
                .iter()
                .filter(|ns| ns.kind == kind)
                .count();
            if count > 1 {
                return fail(
                    "imap.namespace",
                    format!("{count} namespaces of type {kind:?}; one is served"),
                );
            }
        }
        if let [a, b] = self.imap.namespace.as_slice()
            && a.prefix.eq_ignore_ascii_case(&b.prefix)
        {
            return fail(
                "imap.namespace.prefix",
                format!("{:?} is the prefix of both namespaces", a.prefix),
            );
        }
        for namespace in &self.imap.namespace {
            match namespace.kind.as_str() {
                "shared" => {}
                "public" => {
                    if namespace.location.as_deref().is_none_or(str::is_empty) {
                        return fail(
                            "imap.namespace.location",
                            "a public namespace needs the Maildir tree's path, e.g. \"/var/vmail/public\"".to_owned(),
                        );
                    }
                    if let Some(layout) = &namespace.layout
                        && !matches!(layout.as_str(), "fs" | "maildir++")
                    {
                        return fail(
                            "imap.namespace.layout",
                            format!("{layout:?} is not a layout; use \"fs\" or \"maildir++\""),
                        );
                    }
                }
                other => {
                    return fail(
                        "imap.namespace.type",
                        format!("{other:?} is not a namespace type; use \"shared\" or \"public\""),
                    );
                }
            }
            let levels = namespace.prefix.trim_end_matches('/');
            if !namespace.prefix.ends_with('/')
                || levels.is_empty()
                || levels.contains('/')
                || levels.eq_ignore_ascii_case("INBOX")
            {
                return fail(
                    "imap.namespace.prefix",
                    format!(
                        "{:?} must be one level ending with \"/\", e.g. \"Shared/\"",
                        namespace.prefix
                    ),
                );
            }
        }

        // [server]
        if let Err(why) = check_hostname(&self.server.hostname) {
            return fail(
                "server.hostname",
                format!(
                    "{:?} {why}; set it to this server's public name, e.g. \"mail.example.com\"",
                    self.server.hostname
                ),
            );
        }
        let data_dir = &self.server.data_dir;
        if data_dir.as_os_str().is_empty() {
            return fail(
                "server.data_dir",
                "must not be empty; use e.g. \"/var/lib/mailstead\"".to_owned(),
            );
        }
        let Some(data_dir_str) = data_dir.to_str() else {
            return fail(
                "server.data_dir",
                format!(
                    "{:?} is not valid UTF-8; choose a directory whose name is",
                    data_dir.display()
                ),
            );
        };
        // The defaults derived from data_dir are strings with their own
        // syntax; characters that mean something there would be misread.
        let derived: [(&str, bool, &[char]); 3] = [
            (
                "directory.homedir_template",
                self.directory.homedir_template.is_none(),
                &['%'],
            ),
            (
                "directory.maildir_template",
                self.directory.maildir_template.is_none(),
                &['%', ':'],
            ),
            ("directory.url", self.directory.url.is_none(), &['?', '#']),
        ];
        for (key, defaulted, specials) in derived {
            if let Some(special) = specials.iter().find(|c| data_dir_str.contains(**c))
                && defaulted
            {
                return fail(
                    "server.data_dir",
                    format!(
                        "{data_dir_str:?} contains {special:?}, which the default {key} would \
                         misread; choose another directory or set {key} explicitly"
                    ),
                );
            }
        }

        for (key, name) in [
            ("server.user", &self.server.user),
            ("server.group", &self.server.group),
        ] {
            if name.is_empty() || name == "root" || name.contains(['/', ':', '\n']) {
                return fail(
                    key,
                    format!(
                        "{name:?} cannot be used: the server drops root privileges to an \
                         unprivileged account; use e.g. \"mailstead\""
                    ),
                );
            }
        }
        if self.limits.max_connections == 0 {
            return fail("limits.max_connections", "must be at least 1".to_owned());
        }

        // [auth]
        let auth = &self.auth;
        if auth.max_failures_per_address < 1 || auth.max_failures_per_account < 1 {
            let key = if auth.max_failures_per_address < 1 {
                "auth.max_failures_per_address"
            } else {
                "auth.max_failures_per_account"
            };
            return fail(key, "must be at least 1 (the default is 10)".to_owned());
        }
        if let Some(err) = auth
            .trusted_networks
            .iter()
            .find_map(|network| network.parse::<mailstead_auth::Network>().err())
        {
            return fail("auth.trusted_networks", err.to_string());
        }
        if auth.max_failure_delay < auth.failure_delay {
            return fail(
                "auth.max_failure_delay",
                "must not be shorter than auth.failure_delay".to_owned(),
            );
        }

        // [directory]
        if let Some(url) = &self.directory.url {
            check_database_url(url.expose()).or_else(|why| fail("directory.url", why))?;
        }
        let directory = &self.directory;
        if directory.max_connections < 1 {
            return fail("directory.max_connections", "must be at least 1".to_owned());
        }
        if directory.cache_ttl.is_zero() {
            return fail(
                "directory.cache_ttl",
                "must be greater than 0, e.g. \"60s\" (set directory.cache_capacity = 0 to \
                 disable the cache)"
                    .to_owned(),
            );
        }
        if directory.negative_cache_ttl.is_zero() {
            return fail(
                "directory.negative_cache_ttl",
                "must be greater than 0, e.g. \"5s\"".to_owned(),
            );
        }
        if directory.change_poll < Duration::from_millis(10) {
            return fail(
                "directory.change_poll",
                format!(
                    "\"{}\" is too often; use at least \"10ms\" (the default is \"250ms\")",
                    format_duration(directory.change_poll)
                ),
            );
        }
        if directory.recipient_delimiter.contains('@') {
            return fail(
                "directory.recipient_delimiter",
                "must not contain \"@\"; use e.g. \"+\" or \"+-\", or \"\" to disable".to_owned(),
            );
        }
        if let Some(bad) = directory
            .recipient_delimiter
            .chars()
            .find(|c| c.is_whitespace() || c.is_control())
        {
            return fail(
                "directory.recipient_delimiter",
                format!(
                    "must not contain whitespace or control characters (found {bad:?}); \
                     use e.g. \"+\", or \"\" to disable"
                ),
            );
        }
        if directory.expansion_limit < 1 {
            return fail(
                "directory.expansion_limit",
                "must be at least 1 (the default is 1000)".to_owned(),
            );
        }
        if directory.recursion_limit < 1 {
            return fail(
                "directory.recursion_limit",
                "must be at least 1 (the default is 1000)".to_owned(),
            );
        }
        if let Some(template) = &directory.homedir_template {
            check_homedir_template(template)
                .or_else(|why| fail("directory.homedir_template", why))?;
        }
        if let Some(template) = &directory.maildir_template {
            check_maildir_template(template)
                .or_else(|why| fail("directory.maildir_template", why))?;
        }

        // [tls]
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => {
                return fail(
                    "tls",
                    "cert is set but key is not; set both or neither".to_owned(),
                );
            }
            (None, Some(_)) => {
                return fail(
                    "tls",
                    "key is set but cert is not; set both or neither".to_owned(),
                );
            }
            _ => {}
        }
        for (key, value) in [("tls.cert", &self.tls.cert), ("tls.key", &self.tls.key)] {
            if value.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return fail(
                    key,
                    "must not be empty; give a PEM file's path, or remove both tls.cert and \
                     tls.key to use a self-signed certificate"
                        .to_owned(),
                );
            }
        }

        // [smtp]
        if self.smtp.hard_error_limit == 0 {
            return fail(
                "smtp.hard_error_limit",
                "must be at least 1 (Postfix's default is 20)".to_owned(),
            );
        }
        if self.smtp.error_sleep_time > Duration::from_secs(300) {
            return fail(
                "smtp.error_sleep_time",
                "must be at most \"5m\" (Postfix's default is \"1s\")".to_owned(),
            );
        }

        // [queue]
        let queue = &self.queue;
        if !queue.relay_host.is_empty()
            && let Err(why) = mailstead_directory::model::NextHop::parse(&queue.relay_host)
        {
            return fail("queue.relay_host", why);
        }
        if let Some(bad) = queue
            .name_servers
            .iter()
            .find(|server| server.parse::<std::net::SocketAddr>().is_err())
        {
            return fail(
                "queue.name_servers",
                format!("{bad:?} is not an address with a port; write e.g. \"127.0.0.1:53\""),
            );
        }
        if queue.min_backoff.is_zero() || queue.max_backoff < queue.min_backoff {
            return fail(
                "queue.min_backoff",
                "must be above 0 and not above queue.max_backoff (defaults \"5m\" and \"4000s\")"
                    .to_owned(),
            );
        }
        if queue.max_age < Duration::from_secs(1) {
            return fail(
                "queue.max_age",
                "must be at least \"1s\" (the default is \"5d\")".to_owned(),
            );
        }
        if queue.max_connections == 0
            || queue.max_connections_per_destination == 0
            || queue.max_active == 0
        {
            return fail(
                "queue.max_connections",
                "queue.max_connections, max_connections_per_destination and max_active must be at least 1"
                    .to_owned(),
            );
        }
        if !queue.postmaster.is_empty() && !queue.postmaster.contains('@') {
            return fail(
                "queue.postmaster",
                "must be a full address like \"postmaster@example.com\"".to_owned(),
            );
        }

        // [imap]
        if self.imap.idle_timeout < Duration::from_secs(30 * 60) {
            return fail(
                "imap.idle_timeout",
                "must be at least \"30m\": RFC 3501 requires clients to be allowed 30 minutes \
                 of inactivity"
                    .to_owned(),
            );
        }
        if self.imap.max_connections_per_user == 0 || self.imap.max_connections_per_ip == 0 {
            return fail(
                "imap.max_connections_per_user",
                "imap.max_connections_per_user and imap.max_connections_per_ip must be at least 1"
                    .to_owned(),
            );
        }
        if self.imap.max_append_size < 1024 * 1024
            || usize::try_from(self.imap.max_append_size).is_err()
        {
            return fail(
                "imap.max_append_size",
                "must be at least 1048576 (1 MiB) and fit in memory addresses".to_owned(),
            );
        }
        if self.imap.max_line_length < 1024 {
            return fail(
                "imap.max_line_length",
                "must be at least 1024 (Dovecot's default is 65536)".to_owned(),
            );
        }

        // [pop3]
        if self.pop3.idle_timeout < Duration::from_secs(10 * 60) {
            return fail(
                "pop3.idle_timeout",
                "must be at least \"10m\": RFC 1939 requires clients to be allowed 10 minutes \
                 of inactivity"
                    .to_owned(),
            );
        }
        if self.pop3.max_connections_per_user == 0 || self.pop3.max_connections_per_ip == 0 {
            return fail(
                "pop3.max_connections_per_user",
                "pop3.max_connections_per_user and pop3.max_connections_per_ip must be at least 1"
                    .to_owned(),
            );
        }

        // [managesieve]
        if self.managesieve.max_scripts == 0
            || self.managesieve.max_script_size == 0
            || self.managesieve.max_storage < self.managesieve.max_script_size
        {
            return fail(
                "managesieve.max_storage",
                "managesieve.max_scripts and max_script_size must be at least 1, and max_storage \
                 at least max_script_size"
                    .to_owned(),
            );
        }
        if self.managesieve.max_connections_per_user == 0
            || self.managesieve.max_connections_per_ip == 0
        {
            return fail(
                "managesieve.max_connections_per_user",
                "managesieve.max_connections_per_user and managesieve.max_connections_per_ip \
                 must be at least 1"
                    .to_owned(),
            );
        }

        // [http]
        if self.http.request_timeout < Duration::from_secs(1) {
            return fail("http.request_timeout", "must be at least \"1s\"".to_owned());
        }
        if self.http.max_connections_per_ip == 0 {
            return fail(
                "http.max_connections_per_ip",
                "must be at least 1".to_owned(),
            );
        }
        // RFC 8461: at most a year.
        if self.http.mta_sts_max_age > Duration::from_secs(31_557_600) {
            return fail(
                "http.mta_sts_max_age",
                "must be at most a year (\"365d\")".to_owned(),
            );
        }
        if let Some(err) = self
            .http
            .metrics_allow
            .iter()
            .find_map(|network| network.parse::<mailstead_auth::Network>().err())
        {
            return fail("http.metrics_allow", err.to_string());
        }
        for address in &self.http.listen {
            if address.parse::<std::net::SocketAddr>().is_err() {
                return fail(
                    "http.listen",
                    format!("{address:?} is not an address and port like \"127.0.0.1:8080\""),
                );
            }
        }

        // [stats]
        if self.stats.size_interval.subsec_nanos() != 0 {
            return fail(
                "stats.size_interval",
                "must be whole seconds (or \"0s\" to turn it off)".to_owned(),
            );
        }
        if self.stats.events_keep < Duration::from_secs(86_400) {
            return fail("stats.events_keep", "must be at least \"1d\"".to_owned());
        }

        // [log]
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return fail(
                "log.level",
                format!(
                    "{:?} is not a valid filter ({error}); use e.g. \"info\", \"debug\" or \
                     \"warn,mailstead=debug\"",
                    self.log.level
                ),
            );
        }

        // [sieve], [quota]
        for (key, paths) in [
            ("sieve.before", &self.sieve.before),
            ("sieve.after", &self.sieve.after),
        ] {
            if let Some(path) = paths.iter().find(|path| !path.is_absolute()) {
                return fail(
                    key,
                    format!("{:?} must be an absolute path", path.display()),
                );
            }
        }
        if self.sieve.vacation_min_period > Duration::from_secs(90 * 86_400) {
            return fail(
                "sieve.vacation_min_period",
                "must be at most \"90d\"".to_owned(),
            );
        }
        if let Some(warning) = self
            .quota
            .warnings
            .iter()
            .find(|w| !(1..=100).contains(&w.percent))
        {
            return fail(
                "quota.warnings",
                format!("percent {} must be 1 to 100", warning.percent),
            );
        }
        if let Some(command) = &self.quota.warning_command
            && !command.is_absolute()
        {
            return fail(
                "quota.warning_command",
                format!("{:?} must be an absolute path", command.display()),
            );
        }
        Ok(())
    }

    /// A short human summary for `mailstead config check`; never contains a
    /// database password.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: String| {
            out.push_str(&format!("{label:<15} {value}\n"));
        };
        line("hostname:", self.hostname().to_owned());
        line("data directory:", self.data_dir().display().to_string());
        let url = self.directory_url_redacted();
        let directory = match self.directory_kind() {
            DatabaseKind::Sqlite => format!("sqlite database {}", sqlite_file(&url)),
            kind => format!("{kind} database {url}"),
        };
        line("directory:", directory);
        line("mailbox homes:", self.homedir_template());
        line("maildirs:", self.maildir_template());
        let tls = match self.tls_files() {
            Some((cert, key)) => format!("certificate {}, key {}", cert.display(), key.display()),
            None => format!(
                "self-signed certificate in {} (made on first start if missing)",
                self.tls_dir().display()
            ),
        };
        line("tls:", tls);
        line("log level:", self.log.level.clone());
        out
    }
}

/// What `mailstead config check [FILE]` prints: loads and validates `path`
/// (or the defaults) and summarizes the result.
///
/// # Errors
/// The [`ConfigError`] of [`Config::load`].
pub fn check_report(path: Option<&Path>) -> Result<String, ConfigError> {
    let config = Config::load(path)?;
    let source = match path {
        Some(path) => format!("{} is valid", path.display()),
        None => "no config file given; using the built-in defaults".to_owned(),
    };
    Ok(format!("{source}\n{}", config.summary()))
}

/// The dotted key (`directory.url`) assigned on the line containing byte
/// `offset` of `text`, for naming the key in TOML errors. A heuristic for
/// this flat file format (`[section]` headers, `key = value` lines); `None`
/// when the line is a header or does not look like an assignment, in which
/// case toml's message (which quotes the line) has to do.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let plain = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    if !plain(key) {
        return None;
    }
    let section = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with('['))
        .and_then(|header| header.strip_prefix('['))
        .and_then(|header| header.split(']').next())
        .map(str::trim)
        .filter(|section| plain(section));
    Some(match section {
        Some(section) => format!("{section}.{key}"),
        None => key.to_owned(),
    })
}

/// The path part of a SQLite URL, for display.
fn sqlite_file(url: &str) -> &str {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    rest.split('?').next().unwrap_or(rest)
}

fn url_scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let valid = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

fn check_database_url(url: &str) -> Result<(), String> {
    let Some(scheme) = url_scheme(url) else {
        return Err(
            "has no scheme; use sqlite:///path/to/file.db, postgres://user@host/db or \
             mysql://user@host/db"
                .to_owned(),
        );
    };
    let Some(kind) = DatabaseKind::from_scheme(scheme) else {
        return Err(format!(
            "unsupported scheme {scheme:?}; use sqlite://, postgres:// or mysql://"
        ));
    };
    let rest = &url[scheme.len() + 1..];
    match kind {
        DatabaseKind::Sqlite => {
            if sqlite_file(url).is_empty() {
                return Err(
                    "names no database file; use e.g. \"sqlite:///var/lib/mailstead/mailstead.db\""
                        .to_owned(),
                );
            }
        }
        DatabaseKind::Postgres | DatabaseKind::MySql => {
            let host = rest.strip_prefix("//").unwrap_or("");
            if host.is_empty() || host.starts_with('/') {
                return Err(format!(
                    "names no server; use {scheme}://user:password@host/database"
                ));
            }
        }
    }
    Ok(())
}

/// A loose RFC 1123 check: ASCII letters, digits and hyphens in dot-separated
/// labels. Non-ASCII names must be given in their punycode (`xn--`) form.
fn check_hostname(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.len() > 253 {
        return Err("is longer than 253 characters");
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("has an empty or over-long (>63) label");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("may contain only ASCII letters, digits, \"-\" and \".\"");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a label that starts or ends with \"-\"");
        }
    }
    Ok(())
}

/// The machine's host name, or "localhost" if it cannot be read or would not
/// pass validation (a default must never make the server refuse to start).
fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| check_hostname(name).is_ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Placeholders `%d`, `%n`, `%u` only; returns whether `%n` or `%u` occurs.
fn check_placeholders(template: &str) -> Result<bool, String> {
    let mut per_user = false;
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            Some('n' | 'u') => per_user = true,
            Some('d') => {}
            Some(other) => {
                return Err(format!(
                    "unknown placeholder \"%{other}\"; use %d (domain), %n (local part) or %u \
                     (full address)"
                ));
            }
            None => return Err("ends with a lone \"%\"".to_owned()),
        }
    }
    Ok(per_user)
}

fn check_homedir_template(template: &str) -> Result<(), String> {
    if !template.starts_with('/') {
        return Err(format!(
            "{template:?} must be an absolute path, e.g. \"/var/vmail/%d/%n\""
        ));
    }
    if !check_placeholders(template)? {
        return Err(format!(
            "{template:?} must contain %n or %u so that every mailbox gets its own directory"
        ));
    }
    Ok(())
}

fn check_maildir_template(template: &str) -> Result<(), String> {
    let Some(rest) = template.strip_prefix("maildir:") else {
        return Err(format!(
            "{template:?} must start with \"maildir:\", e.g. \"maildir:/var/vmail/%d/%n/Maildir\""
        ));
    };
    let path = rest.split(':').next().unwrap_or("");
    let in_home = path == "~" || path.starts_with("~/");
    if !in_home && !path.starts_with('/') {
        return Err(format!(
            "the path {path:?} must be absolute or start with \"~/\" (the mailbox's home), \
             e.g. \"maildir:~/Maildir\""
        ));
    }
    let per_user = check_placeholders(template)?;
    // `~` is the per-user home directory, which already contains %n or %u.
    if !per_user && !in_home {
        return Err(format!(
            "{template:?} must contain %n or %u (or start from \"~/\") so that every mailbox \
             gets its own maildir"
        ));
    }
    Ok(())
}

/// Replaces the password in every `scheme://user:password@host` in `text`,
/// and the value of any `password=` query parameter, with `***`.
///
/// It errs on the side of hiding too much: the user part ends at the *last*
/// `@` of the URL, so an unescaped `@` or `/` inside a password cannot make
/// part of it leak.
pub fn redact_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, after) = rest.split_at(start + 3);
        out.push_str(before);
        // A URL ends at whitespace or a quote (as in a TOML snippet).
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`'))
            .unwrap_or(after.len());
        out.push_str(&redact_one_url(&after[..end]));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `url` is what follows `scheme://`.
fn redact_one_url(url: &str) -> String {
    let mut redacted = match url.rfind('@') {
        Some(at) => match url[..at].find(':') {
            Some(colon) => format!("{}***{}", &url[..=colon], &url[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    };
    // Postgres also takes `?password=...`.
    let mut from = 0;
    while let Some(found) = redacted[from..].to_ascii_lowercase().find("password=") {
        let value_start = from + found + "password=".len();
        let preceded_ok = from + found == 0
            || matches!(redacted.as_bytes()[from + found - 1], b'?' | b'&' | b';');
        let value_end = redacted[value_start..]
            .find('&')
            .map_or(redacted.len(), |i| value_start + i);
        if preceded_ok && value_end > value_start {
            redacted.replace_range(value_start..value_end, "***");
            from = value_start + 3;
        } else {
            from = value_start;
        }
    }
    redacted
}

/// Parses a duration such as "500ms", "60s", "5m", "1h30m" or "7d".
///
/// Written here rather than taken from `humantime`: it is twenty lines, it
/// accepts exactly the units the example file documents (no months or years
/// of debatable length), and its messages can say what to write instead.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let usage =
        "use a whole number followed by ms, s, m, h or d, e.g. \"500ms\", \"60s\" or \"5m\"";
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("empty duration; {usage}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_len = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len() - digits);
        let (number, unit) = (&rest[..digits], rest[digits..digits + unit_len].trim());
        let bad = || format!("invalid duration {text:?}; {usage}");
        let number: u64 = number.parse().map_err(|_| bad())?;
        let unit_nanos: u64 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            _ => return Err(bad()),
        };
        let nanos = number
            .checked_mul(unit_nanos)
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
        total = total
            .checked_add(Duration::from_nanos(nanos))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
        rest = &rest[digits + unit_len..];
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if millis >= size && millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

/// `deserialize_with` helper for duration keys.
fn deserialize_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    struct DurationVisitor;
    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration string such as \"500ms\", \"60s\" or \"5m\"")
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<Duration, E> {
            parse_duration(value).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "a duration needs a unit and quotes: write \"{value}s\" or \"{value}ms\", not {value}"
            )))
        }
    }
    deserializer.deserialize_any(DurationVisitor)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn auth_section_defaults_and_checks() {
        let config = load("").unwrap();
        assert_eq!(config.auth.failure_window, Duration::from_secs(900));
        assert_eq!(config.auth.max_failures_per_address, 10);
        let config =
            load("[auth]\nfailure_window = \"5m\"\nmax_failure_delay = \"30s\"\n").unwrap();
        assert_eq!(config.auth.failure_window, Duration::from_secs(300));
        assert_eq!(config.auth.max_failure_delay, Duration::from_secs(30));
        assert!(load("[auth]\nmax_failures_per_account = 0\n").is_err());
        assert!(load("[auth]\nfailure_delay = \"20s\"\n").is_err());
        let config = load("[auth]\ntrusted_networks = [\"127.0.0.1\", \"fd00::/8\"]\n").unwrap();
        assert_eq!(config.auth.trusted_networks.len(), 2);
        assert_eq!(config.auth.cache_ttl, Duration::from_secs(3600));
        let config = load("[auth]\ncache_ttl = \"0s\"\ncache_size = 10\n").unwrap();
        assert_eq!(config.auth.cache_ttl, Duration::ZERO);
        assert_eq!(config.auth.cache_size, 10);
        assert_invalid(
            "[auth]\ntrusted_networks = [\"10.0.0.0/40\"]\n",
            "auth.trusted_networks",
            "address/prefix",
        );
    }

    /// Loads TOML text as if it came from `test.toml`.
    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text, Some(Path::new("test.toml")))
    }

    /// The error message for `text`, which must be invalid.
    fn error(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    /// Asserts that `text` fails validation on `key` with a message
    /// containing `needle`, and that the message names file and key.
    fn assert_invalid(text: &str, key: &str, needle: &str) {
        match load(text) {
            Err(ConfigError::Invalid {
                key: got, message, ..
            }) => {
                assert_eq!(got, key, "wrong key for {text:?}: {message}");
                assert!(message.contains(needle), "{message:?} lacks {needle:?}");
            }
            other => panic!("expected Invalid on {key} for {text:?}, got {other:?}"),
        }
        let shown = error(text);
        assert!(shown.starts_with(&format!("test.toml: {key}: ")), "{shown}");
    }

    #[test]
    fn the_account_to_run_as_is_never_root_and_the_connection_cap_is_positive() {
        let config = load("").unwrap();
        assert_eq!(config.server.user, "mailstead");
        assert_eq!(config.server.group, "mailstead");
        assert_eq!(config.limits.max_connections, 20_000);
        assert_invalid("[server]\nuser = \"root\"\n", "server.user", "unprivileged");
        assert_invalid(
            "[server]\ngroup = \"root\"\n",
            "server.group",
            "unprivileged",
        );
        assert_invalid("[server]\nuser = \"\"\n", "server.user", "unprivileged");
        assert_invalid(
            "[limits]\nmax_connections = 0\n",
            "limits.max_connections",
            "at least 1",
        );
        assert_invalid(
            "[queue]\nrelay_host = \"uucp:host\"\n",
            "queue.relay_host",
            "smtp:[host]:port",
        );
        assert_invalid(
            "[queue]\nname_servers = [\"127.0.0.1\"]\n",
            "queue.name_servers",
            "127.0.0.1:53",
        );
        assert_invalid(
            "[queue]\nmin_backoff = \"2h\"\nmax_backoff = \"1h\"\n",
            "queue.min_backoff",
            "max_backoff",
        );
        assert_invalid(
            "[queue]\npostmaster = \"root\"\n",
            "queue.postmaster",
            "full address",
        );
        let config = load("[server]\nuser = \"vmail\"\ngroup = \"vmail\"\n").unwrap();
        assert_eq!(config.server.user, "vmail");
    }

    #[test]
    fn metrics_allow_and_stats_are_checked() {
        let config = Config::default();
        assert_eq!(config.http.metrics_allow, ["127.0.0.0/8", "::1"]);
        assert_eq!(config.stats.size_interval, Duration::from_secs(3600));
        assert_eq!(config.stats.size_keep, Duration::from_secs(365 * 86_400));
        assert_eq!(config.events_dir(), config.data_dir().join("events"));
        let config = load("[http]\nmetrics_allow = [\"10.0.0.0/8\", \"2001:db8::1\"]\n").unwrap();
        assert_eq!(config.http.metrics_allow.len(), 2);
        assert_invalid(
            "[http]\nmetrics_allow = [\"10.0.0.0/33\"]\n",
            "http.metrics_allow",
            "not a network",
        );
        assert_invalid(
            "[stats]\nevents_keep = \"1h\"\n",
            "stats.events_keep",
            "at least",
        );
        let off = load("[stats]\nsize_interval = \"0s\"\n").unwrap();
        assert!(off.stats.size_interval.is_zero());
    }

    fn example_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../mailstead.example.toml")
    }

    #[test]
    fn empty_file_equals_defaults() {
        let config = load("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(Config::load(None).unwrap(), Config::default());
        // Sections present but empty change nothing either.
        assert_eq!(
            load("[server]\n[directory]\n[tls]\n[log]\n").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn defaults_and_derived_values() {
        let config = Config::default();
        let data = std::env::current_dir().unwrap().join("data");
        assert_eq!(config.data_dir(), data);
        assert!(!config.hostname().is_empty());
        assert_eq!(config.directory.max_connections, 8);
        assert_eq!(config.directory.cache_capacity, 100_000);
        assert_eq!(config.directory.cache_ttl, Duration::from_secs(10));
        assert_eq!(config.directory.negative_cache_ttl, Duration::from_secs(5));
        assert_eq!(config.directory.change_poll, Duration::from_millis(250));
        assert_eq!(config.directory.recipient_delimiter, "+");
        assert_eq!(config.directory.expansion_limit, 1000);
        assert_eq!(config.directory.recursion_limit, 1000);
        assert_eq!(config.log.level, "info");
        assert_eq!(
            config.directory_url(),
            format!("sqlite://{}/mailstead.db", data.display())
        );
        assert!(config.directory_url().starts_with("sqlite:///"));
        assert_eq!(config.directory_kind(), DatabaseKind::Sqlite);
        assert_eq!(
            config.homedir_template(),
            format!("{}/mailboxes/%d/%n", data.display())
        );
        assert_eq!(
            config.maildir_template(),
            format!(
                "maildir:{}/mailboxes/%d/%n/Maildir:LAYOUT=fs",
                data.display()
            )
        );
        assert_eq!(config.tls_files(), None);
        assert_eq!(config.tls_dir(), data.join("tls"));
    }

    #[test]
    fn quota_full_tempfail_and_timeouts_load() {
        assert!(!Config::default().smtp.quota_full_tempfail);
        let config = load(
            "[smtp]\nquota_full_tempfail = true\n[limits]\ncommand_timeout = \"2s\"\ndata_timeout = \"3s\"\n",
        )
        .unwrap();
        assert!(config.smtp.quota_full_tempfail);
        assert_eq!(config.limits.command_timeout, Duration::from_secs(2));
        assert_eq!(config.limits.data_timeout, Duration::from_secs(3));
    }

    #[test]
    fn sieve_and_quota_warnings_load_and_are_checked() {
        let defaults = Config::default();
        assert!(defaults.sieve.enabled);
        assert_eq!(defaults.sieve.max_redirects_per_hour, 30);
        assert_eq!(
            defaults.sieve.vacation_min_period,
            Duration::from_secs(86_400)
        );
        assert!(defaults.quota.warnings.is_empty());
        let config = load(
            "[sieve]\nbefore = [\"/etc/sieve/spam.sieve\"]\nvacation_min_period = \"1h\"\n\
             [quota]\nwarnings = [{ percent = 80 }, { percent = 95, message = \"full\" }]\n\
             warning_command = \"/usr/local/bin/warn\"\n",
        )
        .unwrap();
        assert_eq!(
            config.sieve.before,
            [PathBuf::from("/etc/sieve/spam.sieve")]
        );
        assert_eq!(config.sieve.vacation_min_period, Duration::from_secs(3600));
        assert_eq!(config.quota.warnings[1].percent, 95);
        assert_eq!(config.quota.warnings[1].message, "full");
        assert_invalid(
            "[sieve]\nafter = [\"spam.sieve\"]\n",
            "sieve.after",
            "absolute",
        );
        assert_invalid(
            "[sieve]\nvacation_min_period = \"100d\"\n",
            "sieve.vacation_min_period",
            "90d",
        );
        assert_invalid(
            "[quota]\nwarnings = [{ percent = 0 }]\n",
            "quota.warnings",
            "1 to 100",
        );
        assert_invalid(
            "[quota]\nwarning_command = \"warn.sh\"\n",
            "quota.warning_command",
            "absolute",
        );
    }

    #[test]
    fn relative_paths_become_absolute() {
        let config = load(
            "[server]\ndata_dir = \"var/ms\"\n[tls]\ncert = \"c.pem\"\nkey = \"/etc/k.pem\"\n",
        )
        .unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(config.data_dir(), cwd.join("var/ms"));
        assert_eq!(
            config.tls_files(),
            Some((cwd.join("c.pem").as_path(), Path::new("/etc/k.pem")))
        );
        assert!(
            config
                .homedir_template()
                .starts_with(&format!("{}/", cwd.display()))
        );
    }

    #[test]
    fn database_urls() {
        for (url, kind) in [
            ("sqlite:///abs/path.db", DatabaseKind::Sqlite),
            ("sqlite:rel.db", DatabaseKind::Sqlite),
            ("postgres://user@127.0.0.1/db", DatabaseKind::Postgres),
            (
                "postgresql://user:pw@127.0.0.1:5432/db",
                DatabaseKind::Postgres,
            ),
            ("mysql://root@127.0.0.1/db", DatabaseKind::MySql),
            ("mariadb://root@127.0.0.1/db", DatabaseKind::MySql),
        ] {
            let config = load(&format!("[directory]\nurl = {url:?}\n")).unwrap();
            assert_eq!(config.directory_kind(), kind, "{url}");
            assert_eq!(config.directory_url(), url);
        }
        assert_invalid(
            "[directory]\nurl = \"oracle://x/y\"\n",
            "directory.url",
            "unsupported scheme \"oracle\"; use sqlite://, postgres:// or mysql://",
        );
        assert_invalid(
            "[directory]\nurl = \"/var/db.sqlite\"\n",
            "directory.url",
            "has no scheme",
        );
        assert_invalid(
            "[directory]\nurl = \"sqlite://\"\n",
            "directory.url",
            "no database file",
        );
        assert_invalid(
            "[directory]\nurl = \"postgres:db\"\n",
            "directory.url",
            "names no server",
        );
    }

    #[test]
    fn validation_errors_name_their_key() {
        assert_invalid(
            "[server]\nhostname = \"mail_server\"\n",
            "server.hostname",
            "only ASCII letters",
        );
        assert_invalid("[server]\nhostname = \"\"\n", "server.hostname", "is empty");
        assert_invalid(
            "[server]\ndata_dir = \"\"\n",
            "server.data_dir",
            "must not be empty",
        );
        assert_invalid(
            "[server]\ndata_dir = \"/srv/100%\"\n",
            "server.data_dir",
            "misread; choose another directory or set directory.homedir_template",
        );
        assert_invalid(
            "[directory]\nmax_connections = 0\n",
            "directory.max_connections",
            "must be at least 1",
        );
        assert_invalid(
            "[directory]\ncache_ttl = \"0s\"\n",
            "directory.cache_ttl",
            "greater than 0",
        );
        assert_invalid(
            "[directory]\nnegative_cache_ttl = \"0s\"\n",
            "directory.negative_cache_ttl",
            "greater than 0",
        );
        assert_invalid(
            "[directory]\nchange_poll = \"1ms\"\n",
            "directory.change_poll",
            "at least \"10ms\"",
        );
        assert_invalid(
            "[directory]\nrecipient_delimiter = \"+@\"\n",
            "directory.recipient_delimiter",
            "must not contain \"@\"",
        );
        assert_invalid(
            "[directory]\nrecipient_delimiter = \"+ \"\n",
            "directory.recipient_delimiter",
            "whitespace",
        );
        assert_invalid(
            "[directory]\nexpansion_limit = 0\n",
            "directory.expansion_limit",
            "at least 1",
        );
        assert_invalid(
            "[directory]\nrecursion_limit = 0\n",
            "directory.recursion_limit",
            "at least 1",
        );
        assert_invalid(
            "[directory]\nhomedir_template = \"/var/vmail/%d\"\n",
            "directory.homedir_template",
            "must contain %n or %u",
        );
        assert_invalid(
            "[directory]\nhomedir_template = \"vmail/%d/%n\"\n",
            "directory.homedir_template",
            "absolute",
        );
        assert_invalid(
            "[directory]\nhomedir_template = \"/v/%d/%x\"\n",
            "directory.homedir_template",
            "unknown placeholder \"%x\"",
        );
        assert_invalid(
            "[directory]\nmaildir_template = \"maildir:/var/vmail/%d/Maildir\"\n",
            "directory.maildir_template",
            "must contain %n or %u",
        );
        assert_invalid(
            "[directory]\nmaildir_template = \"mbox:/var/vmail/%d/%n\"\n",
            "directory.maildir_template",
            "must start with \"maildir:\"",
        );
        assert_invalid(
            "[tls]\ncert = \"/etc/fullchain.pem\"\n",
            "tls",
            "cert is set but key is not; set both or neither",
        );
        assert_invalid(
            "[tls]\nkey = \"/etc/key.pem\"\n",
            "tls",
            "key is set but cert is not; set both or neither",
        );
        assert_invalid(
            "[log]\nlevel = \"info,=[\"\n",
            "log.level",
            "not a valid filter",
        );
    }

    #[test]
    fn accepted_templates_and_delimiters() {
        let config = load(
            "[directory]\nrecipient_delimiter = \"\"\nhomedir_template = \"/var/vmail/%d/%n\"\n\
             maildir_template = \"maildir:~/Maildir:LAYOUT=fs\"\n",
        )
        .unwrap();
        assert_eq!(config.homedir_template(), "/var/vmail/%d/%n");
        assert_eq!(config.maildir_template(), "maildir:~/Maildir:LAYOUT=fs");
        assert_eq!(config.directory.recipient_delimiter, "");
        load("[directory]\nrecipient_delimiter = \"+-\"\nhomedir_template = \"/m/%u\"\n").unwrap();
        // A data_dir that would break the defaults is fine once they are set.
        load(
            "[server]\ndata_dir = \"/srv/a:b\"\n[directory]\n\
             maildir_template = \"maildir:/m/%d/%n\"\n",
        )
        .unwrap();
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let message = error("[directory]\nurll = \"sqlite:///x.db\"\n");
        assert!(
            message.starts_with("test.toml: directory.urll: "),
            "{message}"
        );
        assert!(message.contains("urll"), "{message}");
        assert!(message.contains("line 2"), "{message}");
        // A misspelt section too.
        let message = error("[diretory]\nurl = \"sqlite:///x.db\"\n");
        assert!(message.contains("diretory"), "{message}");
    }

    #[test]
    fn type_error_names_the_key_and_line() {
        let message =
            error("[server]\nhostname = \"h\"\n\n[directory]\nmax_connections = \"eight\"\n");
        assert!(message.contains("max_connections"), "{message}");
        assert!(message.contains("line 5"), "{message}");
        let message = error("[directory]\ncache_ttl = 60\n");
        assert!(
            message.starts_with("test.toml: directory.cache_ttl: "),
            "{message}"
        );
        assert!(message.contains("\"60s\""), "{message}");
        let message = error("[directory]\nchange_poll = \"5 minutes\"\n");
        assert!(message.contains("change_poll"), "{message}");
        assert!(message.contains("invalid duration"), "{message}");
    }

    #[test]
    fn syntax_error_names_the_file_and_line() {
        let message = error("[server]\nhostname = \"unterminated\n");
        assert!(message.starts_with("test.toml: "), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let message = Config::load(Some(Path::new("/nonexistent/mailstead.toml")))
            .unwrap_err()
            .to_string();
        assert!(message.contains("/nonexistent/mailstead.toml"), "{message}");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 10 s "), Ok(Duration::from_secs(10)));
        for bad in [
            "",
            "60",
            "s",
            "5 minutes",
            "1.5s",
            "-1s",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        let config = load("[directory]\ncache_ttl = \"5m\"\nchange_poll = \"1s\"\n").unwrap();
        assert_eq!(config.directory.cache_ttl, Duration::from_secs(300));
        assert_eq!(config.directory.change_poll, Duration::from_secs(1));
    }

    #[test]
    fn url_passwords_are_redacted() {
        let url = "postgres://mail:s3cret@127.0.0.1:5432/mail";
        assert_eq!(
            redact_secrets(url),
            "postgres://mail:***@127.0.0.1:5432/mail"
        );
        assert_eq!(
            redact_secrets("mysql://root@127.0.0.1/db"),
            "mysql://root@127.0.0.1/db"
        );
        assert_eq!(
            redact_secrets("postgres://h/db?user=u&password=s3cret&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
        // Unescaped '@' and '/' in a password must not leak any of it.
        assert_eq!(
            redact_secrets("url = \"mysql://u:p@s/s@h/db\""),
            "url = \"mysql://u:***@h/db\""
        );

        let config = load(&format!("[directory]\nurl = {url:?}\n")).unwrap();
        assert_eq!(config.directory_url(), url);
        assert!(!config.directory_url_redacted().contains("s3cret"));
        assert!(!format!("{config:?}").contains("s3cret"));
        assert!(!config.summary().contains("s3cret"));
        let url = config.directory.url.clone().unwrap();
        assert_eq!(url.to_string(), "postgres://mail:***@127.0.0.1:5432/mail");
        assert_eq!(url.expose(), "postgres://mail:s3cret@127.0.0.1:5432/mail");

        // Errors never show it either: validation...
        let message = error("[directory]\nurl = \"postgres:u:s3cret@h\"\n");
        assert!(message.contains("directory.url"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
        // ...nor toml's snippet of the offending line.
        let message = error("[directory]\nurl = \"postgres://u:s3cret@h/db\"\nurl = 1\n");
        assert!(!message.contains("s3cret"), "{message}");
        let message = error("[directory]\nurl = \"postgres://u:s3cret@h/db\" junk\n");
        assert!(message.contains("line 2"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn check_report_summarizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailstead.toml");
        std::fs::write(
            &path,
            "[server]\nhostname = \"mx.example.org\"\ndata_dir = \"/srv/ms\"\n\
             [directory]\nurl = \"postgres://ms:hunter2@db.internal/ms\"\n",
        )
        .unwrap();
        let report = check_report(Some(&path)).unwrap();
        assert!(report.contains("is valid"), "{report}");
        assert!(report.contains("mx.example.org"), "{report}");
        assert!(report.contains("/srv/ms"), "{report}");
        assert!(
            report.contains("postgres database postgres://ms:***@db.internal/ms"),
            "{report}"
        );
        assert!(report.contains("self-signed"), "{report}");
        assert!(!report.contains("hunter2"), "{report}");

        let report = check_report(None).unwrap();
        assert!(report.contains("built-in defaults"), "{report}");
        assert!(report.contains("sqlite database /"), "{report}");

        std::fs::write(&path, "[directory]\nmax_connections = 0\n").unwrap();
        let message = check_report(Some(&path)).unwrap_err().to_string();
        assert!(
            message.contains("mailstead.toml: directory.max_connections"),
            "{message}"
        );
    }

    /// The example file must stay loadable and, with every key commented
    /// out, it documents the defaults: loading it gives exactly them.
    #[test]
    fn namespaces_and_acl_settings() {
        let base = "[server]\nhostname = \"mail.example.com\"\n[imap]\n";
        let shared = load(&format!(
            "{base}acl = \"vfile:/var/vmail/conf.d/%d/acls\"\n\
             [[imap.namespace]]\ntype = \"shared\"\nprefix = \"Shared/\"\n"
        ))
        .unwrap();
        assert_eq!(shared.imap.namespace[0].prefix, "Shared/");
        assert_eq!(
            shared.imap.acl.as_deref(),
            Some("vfile:/var/vmail/conf.d/%d/acls")
        );
        // Seed 004's public namespace, as written there.
        let public = load(&format!(
            "{base}[[imap.namespace]]\ntype = \"public\"\nprefix = \"Public/\"\n\
             location = \"/var/vmail/public\"\nlayout = \"fs\"\nprivate_index = \"~/public\"\n"
        ))
        .unwrap();
        let ns = &public.imap.namespace[0];
        assert_eq!(ns.location.as_deref(), Some("/var/vmail/public"));
        assert_eq!(ns.layout.as_deref(), Some("fs"));
        assert_eq!(ns.private_index.as_deref(), Some("~/public"));
        let no_location = error(&format!(
            "{base}[[imap.namespace]]\ntype = \"public\"\nprefix = \"Public/\"\n"
        ));
        assert!(
            no_location.contains("imap.namespace.location"),
            "{no_location}"
        );
        let bad_layout = error(&format!(
            "{base}[[imap.namespace]]\ntype = \"public\"\nprefix = \"Public/\"\n\
             location = \"/p\"\nlayout = \"mbox\"\n"
        ));
        assert!(bad_layout.contains("imap.namespace.layout"), "{bad_layout}");
        let twice = error(&format!(
            "{base}[[imap.namespace]]\ntype = \"public\"\nprefix = \"Public/\"\n\
             location = \"/p\"\n[[imap.namespace]]\ntype = \"public\"\nprefix = \"Team/\"\n\
             location = \"/q\"\n"
        ));
        assert!(twice.contains("imap.namespace"), "{twice}");
        for prefix in ["Shared", "A/B/", "INBOX/", "/"] {
            let bad = error(&format!(
                "{base}[[imap.namespace]]\ntype = \"shared\"\nprefix = \"{prefix}\"\n"
            ));
            assert!(bad.contains("imap.namespace.prefix"), "{prefix}: {bad}");
        }
    }

    #[test]
    fn example_file_loads_and_documents_defaults() {
        let example = Config::load(Some(&example_path())).unwrap();
        assert_eq!(example, Config::default());

        // Every key of every section appears in the example (commented or
        // not), so the file really lists everything.
        let text = std::fs::read_to_string(example_path()).unwrap();
        for key in [
            "[server]",
            "hostname",
            "data_dir",
            "[directory]",
            "url",
            "max_connections",
            "cache_capacity",
            "cache_ttl",
            "negative_cache_ttl",
            "change_poll",
            "recipient_delimiter",
            "expansion_limit",
            "recursion_limit",
            "homedir_template",
            "maildir_template",
            "[tls]",
            "cert",
            "key",
            "reload_check",
            "[submission]",
            "check_from_header",
            "[queue]",
            "min_backoff",
            "max_backoff",
            "max_age",
            "delay_warning",
            "relay_host",
            "relay_auth_file",
            "name_servers",
            "dnssec",
            "ca_file",
            "smtp_port",
            "max_connections_per_destination",
            "max_active",
            "connect_timeout",
            "postmaster",
            "[smtp]",
            "listen",
            "reject_non_fqdn_sender",
            "reject_non_fqdn_recipient",
            "soft_error_limit",
            "hard_error_limit",
            "error_sleep_time",
            "quota_full_tempfail",
            "[lmtp]",
            "[imap]",
            "listen_tls",
            "login_on_loopback_without_tls",
            "max_connections_per_user",
            "idle_timeout",
            "idle_check_interval",
            "max_line_length",
            "max_append_size",
            "[pop3]",
            "[managesieve]",
            "max_scripts",
            "max_script_size",
            "max_storage",
            "[http]",
            "request_timeout",
            "mta_sts_mode",
            "mta_sts_max_age",
            "metrics_allow",
            "[stats]",
            "size_interval",
            "size_keep",
            "events_keep",
            "[limits]",
            "command_timeout",
            "data_timeout",
            "[log]",
            "level",
        ] {
            assert!(text.contains(key), "example lacks {key}");
        }
        // Uncommenting the commented-out keys (with their shown values)
        // must still give a valid config.
        let uncommented: String = text
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if rest.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
                {
                    rest
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let full = load(&uncommented).unwrap();
        // The values it shows where no literal default exists:
        assert_eq!(full.hostname(), "mail.example.com");
        assert_eq!(
            full.directory_url(),
            "sqlite:///var/lib/mailstead/mailstead.db"
        );
        assert_eq!(
            full.tls_files(),
            Some((
                Path::new("/etc/mailstead/fullchain.pem"),
                Path::new("/etc/mailstead/key.pem")
            ))
        );
        // ...and the literal defaults, which must match the real ones.
        let mut expected = Config::default();
        expected.server.hostname = full.server.hostname.clone();
        expected.directory.url = full.directory.url.clone();
        expected.directory.homedir_template = full.directory.homedir_template.clone();
        expected.directory.maildir_template = full.directory.maildir_template.clone();
        expected.tls = full.tls.clone();
        // Example paths, as the TLS files are.
        expected.queue.relay_auth_file = full.queue.relay_auth_file.clone();
        expected.queue.ca_file = full.queue.ca_file.clone();
        assert!(full.queue.relay_auth_file.is_some() && full.queue.ca_file.is_some());
        // Examples where the default is none: a global script, warnings and their command.
        expected.sieve.before = full.sieve.before.clone();
        expected.quota = full.quota.clone();
        assert!(!full.sieve.before.is_empty() && !full.quota.warnings.is_empty());
        assert!(full.quota.warning_command.is_some());
        assert_eq!(full, expected);
    }
}
