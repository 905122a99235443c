//! `mailstead db migrate|status`: the directory database's schema version.

use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;

use mailstead_directory::Directory;

use crate::cli::{Ctx, directory_options};

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create or upgrade the schema to this mailstead's version
    Migrate,
    /// Show the database and its schema version
    Status,
}

#[derive(Serialize)]
struct Migrated {
    backend: &'static str,
    database: String,
    from_version: i64,
    to_version: i64,
}

#[derive(Serialize)]
struct Status {
    backend: &'static str,
    database: String,
    schema_version: i64,
    latest_version: i64,
    /// `up-to-date`, `needs-migration` or `too-new`.
    state: &'static str,
}

pub async fn run(ctx: &Ctx, command: DbCommand) -> anyhow::Result<ExitCode> {
    // Connect without the version check: these commands are how a mismatch gets fixed.
    let directory = Directory::connect(directory_options(&ctx.config)).await?;
    let database = ctx.config.directory_url_redacted();
    match command {
        DbCommand::Migrate => {
            let report = directory.migrate().await?;
            let migrated = Migrated {
                backend: directory.backend().name(),
                database,
                from_version: report.from_version,
                to_version: report.to_version,
            };
            ctx.show(&migrated, || {
                if migrated.from_version == migrated.to_version {
                    format!(
                        "{} is at schema version {} already; nothing to do\n",
                        migrated.database, migrated.to_version
                    )
                } else {
                    format!(
                        "migrated {} from schema version {} to {}\n",
                        migrated.database, migrated.from_version, migrated.to_version
                    )
                }
            })?;
        }
        DbCommand::Status => {
            let (schema_version, latest_version) = directory.schema_versions().await?;
            let state = match schema_version.cmp(&latest_version) {
                std::cmp::Ordering::Equal => "up-to-date",
                std::cmp::Ordering::Less => "needs-migration",
                std::cmp::Ordering::Greater => "too-new",
            };
            let status = Status {
                backend: directory.backend().name(),
                database,
                schema_version,
                latest_version,
                state,
            };
            ctx.show(&status, || {
                let verdict = match status.state {
                    "up-to-date" => "up to date".to_owned(),
                    "needs-migration" => "run `mailstead db migrate`".to_owned(),
                    _ => "newer than this mailstead; upgrade mailstead".to_owned(),
                };
                format!(
                    "backend:  {}\ndatabase: {}\nschema:   version {} (this mailstead knows {}): {verdict}\n",
                    status.backend, status.database, status.schema_version, status.latest_version
                )
            })?;
        }
    }
    directory.close().await;
    Ok(ExitCode::SUCCESS)
}
