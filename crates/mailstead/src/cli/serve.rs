//! `mailstead serve`: start, prepare what the server needs, wait for SIGINT or SIGTERM.
//!
//! The protocol listeners (SMTP, LMTP, IMAP) come later; for now this makes the data
//! directory, the certificate and the directory schema, keeps the directory's cache honest
//! (the change watcher), and shuts down cleanly on a signal.

use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use mailstead_directory::Directory;

use crate::cli::exit::CliError;
use crate::cli::{Ctx, directory_options};
use crate::tls;

pub async fn run(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    // Installed first, so that a signal during start-up ends the process cleanly once it is
    // up, instead of killing it half-way.
    let listen = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|source| CliError::Io {
            what: format!("cannot handle {name}"),
            source,
        })
    };
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM")?;
    let mut interrupt = listen(SignalKind::interrupt(), "SIGINT")?;

    let config = &ctx.config;
    let data_dir = config.data_dir();
    std::fs::create_dir_all(data_dir).map_err(|source| CliError::CantCreate {
        path: data_dir.display().to_string(),
        source,
    })?;
    info!(data_dir = %data_dir.display(), hostname = config.hostname(), "starting");

    let certificate = tls::ensure_certificate(config)?;
    info!(
        cert = %certificate.cert.display(),
        key = %certificate.key.display(),
        origin = ?certificate.origin,
        "TLS certificate ready"
    );

    let (directory, report) = Directory::open_and_migrate(directory_options(config)).await?;
    info!(
        backend = directory.backend().name(),
        database = %config.directory_url_redacted(),
        from_version = report.from_version,
        to_version = report.to_version,
        "directory open"
    );
    let watcher = directory.watch_changes();

    info!("no protocol listeners yet; running until SIGINT or SIGTERM");
    tokio::select! {
        _ = terminate.recv() => info!("SIGTERM received; shutting down"),
        _ = interrupt.recv() => info!("SIGINT received; shutting down"),
    }
    drop(watcher);
    directory.close().await;
    info!("stopped");
    Ok(ExitCode::SUCCESS)
}
