//! `mailstead import passwd-file|mum`: plan, then (unless `--dry-run`) apply; see
//! `mailstead_admin::import`. Exit 65 when some record was skipped or refused.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use mailstead_admin::import::{self as admin_import, Import, MUM_ACTOR, PASSWD_FILE_ACTOR};
use mailstead_admin::{output, passwd_file};
use mailstead_directory::Directory;
use mailstead_directory::access::Actor;

use crate::cli::exit;
use crate::cli::{Ctx, actor};
use crate::config::redact_secrets;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import the users of a Dovecot passwd-file (hashes kept as they are)
    PasswdFile {
        file: PathBuf,
        /// Only show what would be done
        #[arg(long)]
        dry_run: bool,
    },
    /// Import a MUM database: domains, mailboxes, aliases, senders, TLS policies
    Mum {
        /// Its URL, like mysql://user:password@host/mum (or set MAILSTEAD_MUM_URL, which keeps
        /// the password out of the process list)
        #[arg(env = "MAILSTEAD_MUM_URL", hide_env_values = true)]
        url: String,
        /// Only show what would be done
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(ctx: &Ctx, command: ImportCommand) -> anyhow::Result<ExitCode> {
    match command {
        ImportCommand::PasswdFile { file, dry_run } => {
            let entries = passwd_file::read(&file)?;
            let target = ctx.directory().await?;
            let source = file.display().to_string();
            let mut import = admin_import::plan_passwd_file(&target, &source, &entries).await?;
            finish(ctx, &target, &mut import, PASSWD_FILE_ACTOR, dry_run).await
        }
        ImportCommand::Mum { url, dry_run } => {
            let label = redact_secrets(&url);
            // The source is read whole before the target is touched, so a wrong URL leaves
            // no trace (not even a new SQLite file).
            let source = admin_import::connect_source(&url, &label).await?;
            let snapshot = admin_import::read_mum(&source, &label).await;
            source.close().await;
            let snapshot = snapshot?;
            let target = ctx.directory().await?;
            let mut import = admin_import::plan_mum(&snapshot, &label, &target).await?;
            finish(ctx, &target, &mut import, MUM_ACTOR, dry_run).await
        }
    }
}

async fn finish(
    ctx: &Ctx,
    target: &Directory,
    import: &mut Import,
    import_actor: &str,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    if !dry_run {
        // The audit log names the import and who ran it.
        let cli = actor();
        let actor = Actor::new(format!("{import_actor} ({})", cli.name), cli.source);
        admin_import::apply(target, &actor, import).await?;
    }
    ctx.show(&import.report(), || output::import(import))?;
    Ok(if import.is_incomplete() {
        ExitCode::from(exit::DATA)
    } else {
        ExitCode::SUCCESS
    })
}
