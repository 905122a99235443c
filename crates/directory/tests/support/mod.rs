//! Shared helpers for the directory's integration tests: a brand-new, empty database per call,
//! on SQLite, PostgreSQL or MariaDB, opened and migrated through Mailstead's own
//! [`Directory::open_and_migrate`].
//!
//! Use it from a test file with `mod support;` (`#[macro_use] mod support;` for
//! [`on_every_backend!`]).
//!
//! - SQLite: a file in a fresh temporary directory.
//! - PostgreSQL: `CREATE DATABASE mst_<random>` on the server at
//!   `MAILSTEAD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! - MariaDB: `CREATE DATABASE mst_<random>` on the server at `MAILSTEAD_TEST_MYSQL_URL`
//!   (default `mysql://root@127.0.0.1:3306/test`).
//!
//! A server that cannot be reached makes the test panic with a message saying which server to
//! start: backend tests fail, they never skip. Databases are dropped when the handle is dropped
//! (best effort, on a helper thread) or, deterministically, by `cleanup().await`.

#![allow(dead_code)] // Each test binary uses a different part of this module.

/// Makes each named `async fn NAME(backend: TestBackend)` of the test file one test per
/// backend: `sqlite::NAME`, `postgres::NAME` and `mariadb::NAME`.
#[allow(unused_macros)]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::TestBackend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::TestBackend::Postgres).await })*
        }
        mod mariadb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::TestBackend::MariaDb).await })*
        }
    };
}

use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mailstead_directory::{Directory, DirectoryOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, MySqlConnection, PgConnection};
use tempfile::TempDir;

/// The server the PostgreSQL tests create their databases on, unless overridden.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The server the MariaDB tests create their databases on, unless overridden.
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";
/// Overrides [`DEFAULT_POSTGRES_URL`]; the user needs the right to `CREATE DATABASE`.
pub const POSTGRES_URL_ENV: &str = "MAILSTEAD_TEST_POSTGRES_URL";
/// Overrides [`DEFAULT_MYSQL_URL`]; the user needs the right to `CREATE DATABASE`.
pub const MYSQL_URL_ENV: &str = "MAILSTEAD_TEST_MYSQL_URL";

/// How long the best-effort `DROP DATABASE` of a dropped handle may take.
const DROP_TIMEOUT: Duration = Duration::from_secs(20);

/// The database a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
    MariaDb,
}

impl TestBackend {
    /// Every backend, for tests that run the same checks on all three.
    pub const ALL: [TestBackend; 3] = [
        TestBackend::Sqlite,
        TestBackend::Postgres,
        TestBackend::MariaDb,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TestBackend::Sqlite => "sqlite",
            TestBackend::Postgres => "postgres",
            TestBackend::MariaDb => "mariadb",
        }
    }

    /// The URL of the server databases are created on (from the environment or the default);
    /// `None` for SQLite, which needs no server.
    pub fn server_url(self) -> Option<String> {
        let (variable, default) = match self {
            TestBackend::Sqlite => return None,
            TestBackend::Postgres => (POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL),
            TestBackend::MariaDb => (MYSQL_URL_ENV, DEFAULT_MYSQL_URL),
        };
        Some(
            std::env::var(variable)
                .ok()
                .filter(|url| !url.trim().is_empty())
                .unwrap_or_else(|| default.to_owned()),
        )
    }
}

/// A brand-new, empty database (no schema yet) that is dropped with this handle.
#[must_use = "dropping the handle drops the database"]
pub struct TestDatabase {
    pub backend: TestBackend,
    /// The URL of the new database, for [`DirectoryOptions::url`] or a plain connection.
    pub url: String,
    /// An empty directory for mail (`DirectoryOptions::new`'s `mail_root`).
    pub mail_root: PathBuf,
    /// Holds the SQLite file and the mail root; removed on drop.
    _dir: TempDir,
    /// The server database to drop; `None` for SQLite and after cleanup.
    server: Option<ServerDatabase>,
}

/// A directory opened and migrated on a brand-new database.
#[must_use = "dropping the handle drops the database"]
pub struct TestDirectory {
    pub directory: Directory,
    /// The URL the directory was opened with.
    pub url: String,
    pub backend: TestBackend,
    /// The database under the directory. Declared after `directory` so that the pool handle is
    /// released before the database is dropped.
    pub database: TestDatabase,
}

/// Creates a brand-new, empty database on `backend`.
///
/// # Panics
/// When the backend's server cannot be reached or refuses `CREATE DATABASE`; the message says
/// which server to start and which variable points elsewhere.
pub async fn fresh_database(backend: TestBackend) -> TestDatabase {
    let dir = tempfile::Builder::new()
        .prefix("mailstead-test-")
        .tempdir()
        .unwrap_or_else(|err| panic!("cannot create a temporary directory: {err}"));
    let mail_root = dir.path().join("mail");
    std::fs::create_dir_all(&mail_root)
        .unwrap_or_else(|err| panic!("cannot create {}: {err}", mail_root.display()));
    let Some(server_url) = backend.server_url() else {
        let url = format!("sqlite://{}", dir.path().join("directory.db").display());
        return TestDatabase {
            backend,
            url,
            mail_root,
            _dir: dir,
            server: None,
        };
    };
    let name = unique_database_name();
    let server = ServerDatabase {
        backend,
        server_url: server_url.clone(),
        name: name.clone(),
    };
    let create = format!("CREATE DATABASE {name}");
    match backend {
        TestBackend::Postgres => {
            let mut conn = PgConnection::connect(&server_url)
                .await
                .unwrap_or_else(|err| {
                    panic!("{}", unreachable_message(backend, &server_url, &err))
                });
            conn.execute(AssertSqlSafe(create))
                .await
                .unwrap_or_else(|err| {
                    panic!("CREATE DATABASE {name} on {server_url} failed: {err}")
                });
            let _ = conn.close().await;
        }
        TestBackend::MariaDb => {
            let mut conn = MySqlConnection::connect(&server_url)
                .await
                .unwrap_or_else(|err| {
                    panic!("{}", unreachable_message(backend, &server_url, &err))
                });
            conn.execute(AssertSqlSafe(format!(
                "{create} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )))
            .await
            .unwrap_or_else(|err| panic!("CREATE DATABASE {name} on {server_url} failed: {err}"));
            let _ = conn.close().await;
        }
        TestBackend::Sqlite => unreachable!("SQLite returned above"),
    }
    TestDatabase {
        backend,
        url: with_database(&server_url, &name),
        mail_root,
        _dir: dir,
        server: Some(server),
    }
}

/// Creates a brand-new database on `backend` and opens it with
/// [`Directory::open_and_migrate`], with options from [`DirectoryOptions::new`] (URL of the new
/// database, mail under a fresh temporary directory) changed by `options_tweak`. The tweak must
/// leave `url` alone.
///
/// # Panics
/// As [`fresh_database`], and when opening or migrating fails.
pub async fn fresh_directory(
    backend: TestBackend,
    options_tweak: impl FnOnce(&mut DirectoryOptions),
) -> TestDirectory {
    let database = fresh_database(backend).await;
    let mut options = database.options();
    options_tweak(&mut options);
    let url = options.url.clone();
    let (directory, _report) = Directory::open_and_migrate(options)
        .await
        .unwrap_or_else(|err| {
            panic!(
                "opening and migrating a fresh {} database at {url} failed: {err}",
                backend.name()
            )
        });
    TestDirectory {
        directory,
        url,
        backend,
        database,
    }
}

impl TestDatabase {
    /// [`DirectoryOptions::new`] for this database and its mail root.
    pub fn options(&self) -> DirectoryOptions {
        DirectoryOptions::new(self.url.clone(), &self.mail_root.display().to_string())
    }

    /// Drops the database now, on the caller's runtime, instead of on a helper thread at drop.
    /// Close every pool on it first (MariaDB waits for open transactions).
    pub async fn cleanup(mut self) {
        if let Some(server) = self.server.take()
            && let Err(err) = server.drop_database().await
        {
            eprintln!("note: could not drop test database {}: {err}", server.name);
        }
    }
}

impl TestDirectory {
    /// Closes the directory's pool, then drops the database.
    pub async fn cleanup(self) {
        self.directory.close().await;
        self.database.cleanup().await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        // Drop may run inside a runtime (the end of a #[tokio::test]) or during a panic, so the
        // DROP runs on its own thread and runtime; waiting for it keeps the process from exiting
        // first.
        let name = server.name.clone();
        let worker = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())?;
            runtime.block_on(async {
                match tokio::time::timeout(DROP_TIMEOUT, server.drop_database()).await {
                    Ok(result) => result,
                    Err(_) => Err(format!("no answer within {DROP_TIMEOUT:?}")),
                }
            })
        });
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("note: could not drop test database {name}: {err}"),
            Err(_) => eprintln!("note: dropping test database {name} panicked"),
        }
    }
}

/// A database created on a server, and how to drop it.
struct ServerDatabase {
    backend: TestBackend,
    server_url: String,
    name: String,
}

impl ServerDatabase {
    async fn drop_database(&self) -> Result<(), String> {
        match self.backend {
            TestBackend::Postgres => {
                let mut conn = PgConnection::connect(&self.server_url)
                    .await
                    .map_err(|err| err.to_string())?;
                // FORCE (PostgreSQL 13+) ends the sessions a leaked pool may still hold.
                conn.execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                )))
                .await
                .map_err(|err| err.to_string())?;
                let _ = conn.close().await;
            }
            TestBackend::MariaDb => {
                let mut conn = MySqlConnection::connect(&self.server_url)
                    .await
                    .map_err(|err| err.to_string())?;
                conn.execute("SET SESSION lock_wait_timeout = 10")
                    .await
                    .map_err(|err| err.to_string())?;
                conn.execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {}",
                    self.name
                )))
                .await
                .map_err(|err| err.to_string())?;
                let _ = conn.close().await;
            }
            TestBackend::Sqlite => {}
        }
        Ok(())
    }
}

fn unreachable_message(backend: TestBackend, url: &str, err: &sqlx::Error) -> String {
    let (server, start, variable) = match backend {
        TestBackend::Postgres => (
            "PostgreSQL",
            "start PostgreSQL (Debian: `pg_ctlcluster <version> main start` or `service postgresql start`)",
            POSTGRES_URL_ENV,
        ),
        TestBackend::MariaDb | TestBackend::Sqlite => (
            "MariaDB",
            "start MariaDB (`start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd`, then wait a few seconds)",
            MYSQL_URL_ENV,
        ),
    };
    format!(
        "cannot reach the {server} server at {url}: {err}. The {} directory tests need it: {start}, \
         or set {variable} to a server URL whose user may CREATE DATABASE. These tests fail rather than skip.",
        backend.name()
    )
}

/// `mst_` and 16 hex digits: unique across parallel tests and processes, and safe to splice
/// into SQL unquoted.
fn unique_database_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let hash = RandomState::new().hash_one((std::process::id(), nanos, n));
    format!("mst_{hash:016x}")
}

/// `scheme://authority/old?query` with the database (path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |at| authority_start + at);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(
        with_database("mysql://root@127.0.0.1:3306/test", "mst_1"),
        "mysql://root@127.0.0.1:3306/mst_1"
    );
    assert_eq!(
        with_database("postgres://u:p@h:5432/test?sslmode=disable", "mst_2"),
        "postgres://u:p@h:5432/mst_2?sslmode=disable"
    );
    assert_eq!(
        with_database("mysql://root@h", "mst_3"),
        "mysql://root@h/mst_3"
    );
}

/// Logins as a protocol checks them: through the login service, which verifies the password
/// the directory fetched ([`Directory::login_credentials`]). Submission's rules (send-only
/// mailboxes may log in), no failure delay.
pub trait Authenticate {
    async fn authenticate(
        &self,
        login: &str,
        password: &[u8],
    ) -> Result<mailstead_auth::AuthOutcome, mailstead_auth::AuthError>;
}

impl Authenticate for Directory {
    async fn authenticate(
        &self,
        login: &str,
        password: &[u8],
    ) -> Result<mailstead_auth::AuthOutcome, mailstead_auth::AuthError> {
        let auth = mailstead_auth::Authenticator::new(
            self.clone(),
            mailstead_auth::AuthOptions {
                failure_delay: Duration::ZERO,
                max_failure_delay: Duration::ZERO,
                hashing_threads: 1,
                ..mailstead_auth::AuthOptions::default()
            },
        );
        auth.log_in(mailstead_auth::LoginAttempt {
            service: mailstead_auth::Service::Submission,
            client: std::net::IpAddr::from([192, 0, 2, 1]),
            login,
            password,
        })
        .await
    }
}
