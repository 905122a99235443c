//! The one place that knows there are three SQL dialects.
//!
//! Queries are written once, in the portable subset of SQL the three backends share, with `?`
//! placeholders and two markers for what differs:
//! - `{flag:COL}` reads a 0/1 flag as an integer. MySQL's `TINYINT(1)` (MUM's boolean type) is
//!   not a type sqlx's `Any` driver can carry, so MySQL reads it through `CAST(... AS SIGNED)`.
//! - `{int:EXPR}` and `{text:EXPR}` give an expression (often `NULL` in a `UNION`) one
//!   integer or text type on every backend.
//! - `{epoch:COL}` reads a timestamp as Unix seconds, and `{ts}` writes a `?` parameter of Unix
//!   seconds as a timestamp. Timestamps are UTC everywhere; the binding is in Rust, never the
//!   database's clock, so that the three backends agree to the second.
//!
//! [`Db::sql`] renders a template for the backend at hand (and numbers placeholders `$1, $2…`
//! for PostgreSQL). Everything runs through sqlx's `Any` driver so each query is executed by one
//! code path, not three.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Connection, Executor};

use crate::DirectoryError;

/// The SQL database behind the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    /// Picks the backend from a database URL's scheme.
    ///
    /// # Errors
    /// [`DirectoryError::BadUrl`] for any other scheme.
    pub fn from_url(url: &str) -> Result<Backend, DirectoryError> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme).unwrap_or("");
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(DirectoryError::BadUrl(format!(
                "unsupported scheme {scheme:?}; use sqlite://, postgres:// or mysql://"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

/// How long opening the first connection may take before the database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/mysql");

/// A connection pool plus the dialect to render queries for.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
}

/// What `migrate` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// The schema version before, 0 for an empty database.
    pub from_version: i64,
    /// The schema version now, which is the newest this binary knows.
    pub to_version: i64,
}

impl Db {
    pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<Db, DirectoryError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            // Create the database file on first start: the embedded default needs no set-up.
            Backend::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            Backend::Sqlite | Backend::Postgres | Backend::MySql => url.to_owned(),
        };
        if backend == Backend::Sqlite {
            create_sqlite_parent_dir(&url)?;
        }
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|err| DirectoryError::BadUrl(err.to_string()))?;
        // One plain connection first: a pool that cannot connect only reports "timed out",
        // while this surfaces the cause ("connection refused", "unknown database") at once.
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect_with(&options))
            .await
            .map_err(|_| DirectoryError::Connect {
                backend: backend.name(),
                source: Arc::new(sqlx::Error::PoolTimedOut),
            })?
            .map_err(|source| DirectoryError::Connect {
                backend: backend.name(),
                source: Arc::new(source),
            })?;
        probe.close().await?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(CONNECT_TIMEOUT * 2)
            // sqlx pings a pooled connection before each use by default: a second round trip
            // per lookup (1.5-1.9x fewer queries/s in bench/). A connection that died fails
            // its query instead, the pool drops it, and the caller answers "try again later".
            .test_before_acquire(false)
            .idle_timeout(Duration::from_secs(300))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    // Timestamps are UTC in every backend; see the module comment.
                    let setup: &'static str = match backend {
                        Backend::Sqlite => "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000",
                        Backend::Postgres => "SET TIME ZONE 'UTC'",
                        Backend::MySql => "SET time_zone = '+00:00'",
                    };
                    conn.execute(setup).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| DirectoryError::Connect {
                backend: backend.name(),
                source: Arc::new(source),
            })?;
        if backend == Backend::Sqlite {
            // WAL lets the server read while the CLI writes; it is a property of the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Ok(Db { pool, backend })
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
            Backend::MySql => &MYSQL_MIGRATIONS,
        }
    }

    /// The newest schema version this binary carries.
    pub(crate) fn latest_version(&self) -> i64 {
        self.migrator()
            .iter()
            .map(|migration| migration.version)
            .max()
            .unwrap_or(0)
    }

    /// The schema version the database is at: 0 when it has none yet.
    pub(crate) async fn current_version(&self) -> Result<i64, DirectoryError> {
        let table_exists = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
            Backend::MySql => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '_sqlx_migrations'"
            }
        };
        let count: i64 = sqlx::query_scalar(table_exists)
            .fetch_one(&self.pool)
            .await?;
        if count == 0 {
            return Ok(0);
        }
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await?;
        Ok(version.unwrap_or(0))
    }

    /// Refuses a database whose schema is newer than this binary, or older when `allow_older`
    /// is false: a server must not guess at columns it does not know.
    pub(crate) async fn check_version(&self, allow_older: bool) -> Result<i64, DirectoryError> {
        let current = self.current_version().await?;
        let latest = self.latest_version();
        if current > latest {
            return Err(DirectoryError::SchemaTooNew {
                database: current,
                binary: latest,
            });
        }
        if current < latest && !allow_older {
            return Err(DirectoryError::SchemaTooOld {
                database: current,
                binary: latest,
            });
        }
        Ok(current)
    }

    pub(crate) async fn migrate(&self) -> Result<MigrationReport, DirectoryError> {
        let from_version = self.check_version(true).await?;
        self.migrator()
            .run(&self.pool)
            .await
            .map_err(|err| DirectoryError::Migrate(err.to_string()))?;
        Ok(MigrationReport {
            from_version,
            to_version: self.latest_version(),
        })
    }

    /// Renders a query template for this backend (see the module comment).
    pub(crate) fn sql(&self, template: &str) -> AssertSqlSafe<String> {
        AssertSqlSafe(render(self.backend, template))
    }
}

fn create_sqlite_parent_dir(url: &str) -> Result<(), DirectoryError> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|source| DirectoryError::Io {
            path: parent.display().to_string(),
            source: Arc::new(source),
        })?;
    }
    Ok(())
}

pub(crate) fn render(backend: Backend, template: &str) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let marker = &after[..end];
        out.push_str(&expand_marker(backend, marker));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if backend == Backend::Postgres {
        number_placeholders(&out)
    } else {
        out
    }
}

fn expand_marker(backend: Backend, marker: &str) -> String {
    if marker == "ts" {
        return match backend {
            Backend::Sqlite => "datetime(?, 'unixepoch')".to_owned(),
            Backend::Postgres => "(TO_TIMESTAMP(?) AT TIME ZONE 'UTC')".to_owned(),
            Backend::MySql => "FROM_UNIXTIME(?)".to_owned(),
        };
    }
    if let Some(column) = marker.strip_prefix("flag:") {
        return match backend {
            Backend::MySql => format!("CAST({column} AS SIGNED)"),
            Backend::Sqlite | Backend::Postgres => column.to_owned(),
        };
    }
    if let Some(value) = marker.strip_prefix("int:") {
        return match backend {
            Backend::Sqlite => value.to_owned(),
            Backend::Postgres => format!("CAST({value} AS BIGINT)"),
            Backend::MySql => format!("CAST({value} AS SIGNED)"),
        };
    }
    if let Some(value) = marker.strip_prefix("text:") {
        // MySQL types a UNION column from all its branches, and a CAST would bring a
        // collation that clashes with the columns'; only PostgreSQL needs the type spelt out.
        return match backend {
            Backend::Sqlite | Backend::MySql => value.to_owned(),
            Backend::Postgres => format!("CAST({value} AS TEXT)"),
        };
    }
    if let Some(column) = marker.strip_prefix("epoch:") {
        return match backend {
            Backend::Sqlite => format!("CAST(strftime('%s', {column}) AS INTEGER)"),
            Backend::Postgres => format!("CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"),
            Backend::MySql => format!("CAST(UNIX_TIMESTAMP({column}) AS SIGNED)"),
        };
    }
    format!("{{{marker}}}")
}

/// `?` → `$1, $2…`. Our templates hold no `?` inside string literals, so a plain scan is enough.
fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_markers_per_backend() {
        let template =
            "SELECT {flag:m.active}, {epoch:a.deactivate_at} FROM t WHERE x = ? AND y = {ts}";
        assert_eq!(
            render(Backend::MySql, template),
            "SELECT CAST(m.active AS SIGNED), CAST(UNIX_TIMESTAMP(a.deactivate_at) AS SIGNED) FROM t WHERE x = ? AND y = FROM_UNIXTIME(?)"
        );
        assert_eq!(
            render(Backend::Postgres, template),
            "SELECT m.active, CAST(EXTRACT(EPOCH FROM a.deactivate_at) AS BIGINT) FROM t WHERE x = $1 AND y = (TO_TIMESTAMP($2) AT TIME ZONE 'UTC')"
        );
        assert_eq!(
            render(Backend::Sqlite, template),
            "SELECT m.active, CAST(strftime('%s', a.deactivate_at) AS INTEGER) FROM t WHERE x = ? AND y = datetime(?, 'unixepoch')"
        );
    }

    #[test]
    fn renders_typed_values() {
        let template = "SELECT {int:NULL}, {text:NULL}, {int:m.quota}";
        assert_eq!(
            render(Backend::MySql, template),
            "SELECT CAST(NULL AS SIGNED), NULL, CAST(m.quota AS SIGNED)"
        );
        assert_eq!(
            render(Backend::Postgres, template),
            "SELECT CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(m.quota AS BIGINT)"
        );
        assert_eq!(
            render(Backend::Sqlite, template),
            "SELECT NULL, NULL, m.quota"
        );
    }

    #[test]
    fn backend_from_url() {
        assert_eq!(
            Backend::from_url("sqlite:///tmp/x.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("mysql://root@h/db").unwrap(),
            Backend::MySql
        );
        let err = Backend::from_url("oracle://x").unwrap_err().to_string();
        assert!(err.contains("\"oracle\""), "{err}");
    }
}
