//! Mailstead's directory: every domain, mailbox, alias, sender right, quota and TLS policy, in
//! one SQL database whose tables are MUM's.
//!
//! SMTP, LMTP, IMAP, submission and the admin API all ask the directory the same questions
//! through one handle, [`Directory`]: resolve a recipient, fetch a login's credentials, may this login
//! send as this address, a mailbox's quota and location, a remote domain's TLS policy. Writes
//! (the CLI, the HTTP API) go through the same handle and are audited.
//!
//! # Layout
//! - `address`: parsing and normalising addresses (IDNA, case, recipient delimiters).
//! - `model`: the records (`Domain`, `Mailbox`, `Alias`, `Quota`, `TlsPolicy`, …).
//! - `sql`: the three dialects (SQLite, PostgreSQL, MySQL/MariaDB) and migrations.
//! - `lookup`: the uncached read queries.
//! - `resolve`: recipient resolution (aliases, catch-alls, alias domains, delimiters).
//! - `cache`: the in-process answer cache and the change watcher that invalidates it.
//! - `manage`: validated, audited writes.
//! - `access`: who is asking ([`access::Principal`]), MUM's roles and the one policy on what
//!   they may read and change; [`access::Actor`], who a write is audited under.
//! - `sizes`: mailbox, domain and server sizes over time (MUM's `size_measurements`).
//!
//! # Security
//! Every address and password handed in comes from the network; nothing here panics on it.
//! This crate is the only one in Mailstead that issues SQL.

#![forbid(unsafe_code)]

pub mod access;
pub mod account;
pub mod address;
mod cache;
mod lookup;
pub mod manage;
pub mod model;
pub mod resolve;
pub mod sizes;
mod sql;

use std::sync::Arc;
use std::time::Duration;

use crate::address::{Address, AddressError};
use crate::cache::{Caches, Freshness};
use crate::sql::Db;

pub use crate::sql::{Backend, MigrationReport};

/// [`DirectoryOptions::cache_ttl`] by default.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(10);
/// [`DirectoryOptions::negative_cache_ttl`] by default.
pub const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(5);

/// How to reach the directory and how it behaves; the binary fills it from the config file.
#[derive(Clone, Debug)]
pub struct DirectoryOptions {
    /// `sqlite://…`, `postgres://…` or `mysql://…`.
    pub url: String,
    pub max_connections: u32,
    /// How many answers to keep in memory.
    pub cache_capacity: u64,
    /// The longest a cached answer is trusted. Every writer bumps the change counter (through
    /// the database's triggers), so this only bounds staleness when the triggers are missing.
    pub cache_ttl: Duration,
    /// The longest a refusal (unknown recipient, unknown or deactivated login, no TLS policy)
    /// is trusted; never longer than `cache_ttl`. Short, because a `550` bounces for good.
    pub negative_cache_ttl: Duration,
    /// How often [`Directory::watch_changes`] polls the change counter.
    pub change_poll: Duration,
    /// The set of characters that split `user+tag`; empty disables.
    pub recipient_delimiter: String,
    /// Most addresses one recipient may expand to (Postfix: 1000).
    pub expansion_limit: usize,
    /// Deepest nesting of aliases (Postfix: 1000).
    pub recursion_limit: usize,
    /// MUM's `MAILBOXES_HOMEDIR` with `%d`, `%n`, `%u`.
    pub homedir_template: String,
    /// MUM's `MAILBOXES_MAILDIR` with `%d`, `%n`, `%u`.
    pub maildir_template: String,
}

impl DirectoryOptions {
    /// Defaults for a database at `url` with mail under `mail_root`.
    pub fn new(url: impl Into<String>, mail_root: &str) -> DirectoryOptions {
        DirectoryOptions {
            url: url.into(),
            max_connections: 8,
            cache_capacity: 100_000,
            cache_ttl: DEFAULT_CACHE_TTL,
            negative_cache_ttl: DEFAULT_NEGATIVE_CACHE_TTL,
            change_poll: Duration::from_millis(250),
            recipient_delimiter: "+".to_owned(),
            expansion_limit: 1000,
            recursion_limit: 1000,
            homedir_template: format!("{mail_root}/%d/%n"),
            maildir_template: format!("maildir:{mail_root}/%d/%n/Maildir:LAYOUT=fs"),
        }
    }
}

/// Everything that can go wrong talking to the directory.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectoryError {
    #[error("bad database URL: {0}")]
    BadUrl(String),
    #[error("cannot connect to the {backend} database: {source}")]
    Connect {
        backend: &'static str,
        #[source]
        source: Arc<sqlx::Error>,
    },
    #[error("database error: {0}")]
    Sql(#[source] Arc<sqlx::Error>),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error(
        "the database schema is version {database}, newer than this mailstead understands (version {binary}); upgrade mailstead before using this database"
    )]
    SchemaTooNew { database: i64, binary: i64 },
    #[error(
        "the database schema is version {database} but this mailstead needs version {binary}; run `mailstead db migrate`"
    )]
    SchemaTooOld { database: i64, binary: i64 },
    #[error("migration failed: {0}")]
    Migrate(String),
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error("stored password of {login} cannot be read: {reason}")]
    StoredPassword { login: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    LimitExceeded(String),
}

impl From<sqlx::Error> for DirectoryError {
    fn from(err: sqlx::Error) -> DirectoryError {
        DirectoryError::Sql(Arc::new(err))
    }
}

/// A cheap-to-clone handle on the directory.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    options: DirectoryOptions,
    caches: Caches,
}

impl Directory {
    /// Connects and checks that the schema is exactly the one this binary knows.
    ///
    /// # Errors
    /// Connection failures, and a schema older ([`DirectoryError::SchemaTooOld`]) or newer
    /// ([`DirectoryError::SchemaTooNew`]) than this binary.
    pub async fn open(options: DirectoryOptions) -> Result<Directory, DirectoryError> {
        let directory = Directory::connect(options).await?;
        directory.inner.db.check_version(false).await?;
        Ok(directory)
    }

    /// Connects, then brings the schema up to date (creating it in an empty database). What a
    /// server does at start.
    ///
    /// # Errors
    /// As [`Directory::open`], except that an older schema is migrated, not refused.
    pub async fn open_and_migrate(
        options: DirectoryOptions,
    ) -> Result<(Directory, MigrationReport), DirectoryError> {
        let directory = Directory::connect(options).await?;
        let report = directory.inner.db.migrate().await?;
        Ok((directory, report))
    }

    /// Connects without looking at the schema; for `db migrate` and `db status`.
    ///
    /// # Errors
    /// Connection failures.
    pub async fn connect(options: DirectoryOptions) -> Result<Directory, DirectoryError> {
        let db = Db::connect(&options.url, options.max_connections).await?;
        let caches = Caches::new(
            options.cache_capacity,
            Freshness {
                ttl: options.cache_ttl,
                negative_ttl: options.negative_cache_ttl,
            },
        );
        Ok(Directory {
            inner: Arc::new(Inner {
                db,
                options,
                caches,
            }),
        })
    }

    /// Applies the migrations this binary carries.
    ///
    /// # Errors
    /// A schema newer than this binary, or a failed migration.
    pub async fn migrate(&self) -> Result<MigrationReport, DirectoryError> {
        self.inner.db.migrate().await
    }

    /// The schema version of the database and the newest this binary knows.
    ///
    /// # Errors
    /// Database errors.
    pub async fn schema_versions(&self) -> Result<(i64, i64), DirectoryError> {
        let current = self.inner.db.current_version().await?;
        Ok((current, self.inner.db.latest_version()))
    }

    pub fn backend(&self) -> Backend {
        self.inner.db.backend
    }

    /// Asks the database one small query (the change counter), for readiness checks.
    ///
    /// # Errors
    /// Whatever keeps the database from answering.
    pub async fn ping(&self) -> Result<(), DirectoryError> {
        lookup::change_serial(&self.inner.db).await.map(|_| ())
    }

    pub fn options(&self) -> &DirectoryOptions {
        &self.inner.options
    }

    /// Drops every cached answer; the change watcher calls this when the counter moves.
    pub fn clear_cache(&self) {
        self.inner.caches.clear();
    }

    /// Parses an address and fails with the reason when it is not one.
    ///
    /// # Errors
    /// [`DirectoryError::Address`].
    pub fn parse_address(input: &str) -> Result<Address, DirectoryError> {
        Ok(Address::parse(input)?)
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.inner.db.pool.close().await;
    }
}
