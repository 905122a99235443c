//! `mailstead serve`: start, prepare what the server needs, wait for SIGINT or SIGTERM.
//! SIGHUP (or a change of the files, checked every `tls.reload_check`) reloads the TLS
//! certificate for new sessions.
//!
//! Makes the data directory (private, 0700) and the certificate, binds every listener, and,
//! when started as root, gives the data directory to `[server] user` and becomes that user
//! before anything reads the network or the database. Then it makes the directory schema,
//! cleans what a crash left in the spool and (in the background) in every Maildir's `tmp/`,
//! keeps the directory's cache honest (the change watcher), serves every listener through one
//! registry of connections (`[limits] max_connections`, within the open-file limit), and on a signal stops
//! accepting, tells idle sessions `421` and waits (at most `SHUTDOWN_GRACE`) for sessions
//! receiving a message to finish it. The IMAP listeners (STARTTLS and implicit TLS) share the
//! directory, the certificate and, through the store's `MailStore`, the delivery
//! notifications that wake IDLE sessions; the POP3 listeners (STLS and implicit TLS) share
//! the same login service and `MailStore`.

use std::os::unix::fs::PermissionsExt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

use mailstead_directory::Directory;
use mailstead_directory::model::unsafe_location;
use mailstead_imap::{ImapContext, Security};
use mailstead_managesieve::ManageSieveContext;
use mailstead_net::Connections;
use mailstead_pop3::Pop3Context;
use mailstead_smtp::{Limits, Mode, SmtpContext};
use mailstead_store::{MailStore, Store};

use crate::cli::exit::CliError;
use crate::cli::{Ctx, directory_options};
use crate::config::{Config, MtaStsMode};
use crate::{privileges, tls};

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
    let hangup = listen(SignalKind::hangup(), "SIGHUP")?;

    // Files in a Maildir's tmp/ older than this are leftovers of an earlier run.
    let started = SystemTime::now();
    let config = &ctx.config;
    let data_dir = config.data_dir();
    std::fs::create_dir_all(data_dir).map_err(|source| CliError::CantCreate {
        path: data_dir.display().to_string(),
        source,
    })?;
    privileges::secure_data_dir(config)?;
    info!(data_dir = %data_dir.display(), hostname = config.hostname(), "starting");

    // Read (or made) while still root: a key readable by root only is fine.
    let certificate = tls::ensure_certificate(config)?;
    info!(
        cert = %certificate.cert.display(),
        key = %certificate.key.display(),
        origin = ?certificate.origin,
        "TLS certificate ready"
    );
    let tls_config = Arc::new(mailstead_net::TlsConfig::new(tls::server_config(
        &certificate,
    )?));

    // Every listener is bound before any is served, so a bad address fails the start; and
    // before the privilege drop, which ports below 1024 need.
    let account = privileges::account_to_run_as(config)?;
    if let Some(account) = &account {
        privileges::open_path_to(data_dir, account)?;
        privileges::hand_over_data_dir(data_dir, account)?;
    }
    let listeners = bind_listeners(config).await?;
    // The relay password and a private CA are read while still root.
    let outbound_config = outbound_config(config)?;
    if let Some(account) = &account {
        privileges::drop_to(account)?;
    }

    // One registry for every listener: the cap is the process's, within its descriptors.
    let reserve = u64::from(config.directory.max_connections)
        + u64::try_from(mailstead_net::TRANSIENT_CONNECTIONS + listeners.len()).unwrap_or(0);
    let max_connections = usize::try_from(config.limits.max_connections).unwrap_or(usize::MAX);
    let connections = Connections::new(privileges::connection_capacity(max_connections, reserve));

    let (directory, report) = Directory::open_and_migrate(directory_options(config)).await?;
    info!(
        backend = directory.backend().name(),
        database = %config.directory_url_redacted(),
        from_version = report.from_version,
        to_version = report.to_version,
        "directory open"
    );
    let watcher = directory.watch_changes();
    // Before any listener: every event of the run is recorded.
    let event_log =
        mailstead_events::EventLog::start(config.events_dir(), config.stats.events_keep).map_err(
            |source| CliError::Io {
                what: format!(
                    "cannot start the event log in {}",
                    config.events_dir().display()
                ),
                source,
            },
        )?;

    let spool = data_dir.join("spool");
    let store =
        Store::new(config.hostname(), spool.clone()).map_err(|err| CliError::CantCreate {
            path: spool.display().to_string(),
            source: std::io::Error::other(err),
        })?;
    match store.clean_spool().await {
        Ok(0) => {}
        Ok(removed) => info!(removed, "removed unfinished messages from the spool"),
        Err(err) => {
            return Err(CliError::CantCreate {
                path: spool.display().to_string(),
                source: std::io::Error::other(err),
            }
            .into());
        }
    }
    // Leftovers of deliveries cut short by a crash, cleaned while the server already serves.
    let tmp_cleaner = tokio::spawn(clean_maildir_tmps(directory.clone(), started));
    // One cell for every listener: a reload reaches every new STARTTLS session.
    let reloader = tokio::spawn(reload_certificate(
        tls::CertificateReloader::new(certificate.clone(), Arc::clone(&tls_config)),
        hangup,
        config.tls.reload_check,
    ));
    let limits = Limits {
        max_message_size: config.limits.max_message_size,
        max_recipients: usize::try_from(config.limits.max_recipients).unwrap_or(usize::MAX),
        max_connections_per_ip: usize::try_from(config.limits.max_connections_per_ip)
            .unwrap_or(usize::MAX),
        command_timeout: config.limits.command_timeout,
        data_timeout: config.limits.data_timeout,
        max_errors: config.smtp.hard_error_limit,
        soft_error_limit: config.smtp.soft_error_limit,
        error_sleep: config.smtp.error_sleep_time,
        reject_non_fqdn_sender: config.smtp.reject_non_fqdn_sender,
        reject_non_fqdn_recipient: config.smtp.reject_non_fqdn_recipient,
        quota_full_tempfail: config.smtp.quota_full_tempfail,
        ..Limits::default()
    };
    // One login service for every listener and protocol, so failures count across them.
    let auth = mailstead_auth::Authenticator::new(directory.clone(), super::auth_options(config));
    let outbound = mailstead_queue::Outbound::new(outbound_config)
        .map_err(|err| CliError::Config(format!("[queue]: {err}")))?;
    let queue = mailstead_queue::Queue::open(
        queue_config(config),
        directory.clone(),
        store.clone(),
        Arc::new(outbound),
    )
    .map_err(|err| CliError::Io {
        what: "cannot open the queue (is another server running on this data directory?)"
            .to_owned(),
        source: std::io::Error::other(err),
    })?;
    let mail_store = MailStore::new(&store);
    queue.set_local_delivery(mailstead_queue::LocalDelivery::new(
        &store,
        mail_store.clone(),
        mailstead_queue::LocalConfig {
            quota_warnings: config
                .quota
                .warnings
                .iter()
                .map(|warning| mailstead_queue::QuotaWarning {
                    percent: warning.percent,
                    message: warning.message.clone(),
                })
                .collect(),
            quota_warning_command: config.quota.warning_command.clone(),
            sieve: mailstead_queue::SieveConfig {
                enabled: config.sieve.enabled,
                before: config.sieve.before.clone(),
                after: config.sieve.after.clone(),
                limits: mailstead_sieve::Limits {
                    max_script_bytes: config.sieve.max_script_size,
                    max_actions: config.sieve.max_actions,
                    max_redirects: config.sieve.max_redirects,
                    ..mailstead_sieve::Limits::default()
                },
                max_redirects_per_hour: config.sieve.max_redirects_per_hour,
                vacation_min_period: config.sieve.vacation_min_period,
            },
        },
    ));
    let policy = mailstead_smtp::Policy {
        check_from_header: config.submission.check_from_header,
        postmaster: (!config.queue.postmaster.is_empty()).then(|| config.queue.postmaster.clone()),
    };
    let context = |mode: Mode| {
        Arc::new(SmtpContext {
            directory: directory.clone(),
            store: store.clone(),
            hostname: config.hostname().to_owned(),
            tls: Some(Arc::clone(&tls_config)),
            limits: limits.clone(),
            mode,
            // LMTP comes from a server with a queue of its own.
            queue: (mode != Mode::Lmtp).then(|| queue.clone()),
            local: queue.local_delivery().clone(),
            auth: (mode == Mode::Submission).then(|| auth.clone()),
            policy: policy.clone(),
        })
    };
    let imap = ImapContext::new(
        directory.clone(),
        mail_store.clone(),
        config.hostname().to_owned(),
        Some(Arc::clone(&tls_config)),
        mailstead_imap::Limits {
            max_line: config.imap.max_line_length,
            max_literal: usize::try_from(config.imap.max_append_size).unwrap_or(usize::MAX),
            idle_timeout: config.imap.idle_timeout,
            idle_check_interval: config.imap.idle_check_interval,
            max_connections_per_ip: usize::try_from(config.imap.max_connections_per_ip)
                .unwrap_or(usize::MAX),
            max_connections_per_user: usize::try_from(config.imap.max_connections_per_user)
                .unwrap_or(usize::MAX),
            ..mailstead_imap::Limits::default()
        },
        config.imap.login_on_loopback_without_tls,
    );
    let imap = imap.with_authenticator(auth.clone());
    let imap = match &config.imap.acl {
        Some(setting) => imap.with_acls(mailstead_store::acl::GlobalAcl::from_setting(setting)),
        None => imap,
    };
    let shared_index = Arc::new(mailstead_store::acl::SharedIndex::new(
        data_dir.join("shared-mailboxes"),
    ));
    let imap = match config.imap.namespace.iter().find(|ns| ns.kind == "shared") {
        Some(shared) => {
            tokio::spawn(index_shared_owners(
                directory.clone(),
                mail_store.clone(),
                Arc::clone(&shared_index),
            ));
            imap.with_shared_namespace(mailstead_imap::SharedNamespace {
                prefix: shared.prefix.clone(),
                index: shared_index,
            })
        }
        None => imap,
    };
    let imap = match config.imap.namespace.iter().find(|ns| ns.kind == "public") {
        Some(public) => {
            let location = public.location.clone().unwrap_or_default();
            if !std::path::Path::new(&location).is_dir() {
                warn!(
                    location,
                    "the public namespace's Maildir tree is missing; it lists nothing"
                );
            }
            imap.with_public_namespace(mailstead_imap::PublicNamespace {
                prefix: public.prefix.clone(),
                location: location.into(),
                layout: match public.layout.as_deref() {
                    Some("maildir++") => mailstead_store::FolderLayout::MaildirPlusPlus,
                    _ => mailstead_store::FolderLayout::Fs,
                },
                private_index: public.private_index.clone(),
            })
        }
        None => imap,
    };
    let imap = Arc::new(imap);
    let pop3 = Pop3Context::new(
        directory.clone(),
        mail_store.clone(),
        Some(Arc::clone(&tls_config)),
        mailstead_pop3::Limits {
            idle_timeout: config.pop3.idle_timeout,
            max_connections_per_ip: usize::try_from(config.pop3.max_connections_per_ip)
                .unwrap_or(usize::MAX),
            max_connections_per_user: usize::try_from(config.pop3.max_connections_per_user)
                .unwrap_or(usize::MAX),
            ..mailstead_pop3::Limits::default()
        },
        config.pop3.login_on_loopback_without_tls,
    );
    let pop3 = Arc::new(pop3.with_authenticator(auth.clone()));
    let managesieve = ManageSieveContext::new(
        directory.clone(),
        Some(Arc::clone(&tls_config)),
        mailstead_managesieve::Limits {
            max_scripts: usize::try_from(config.managesieve.max_scripts).unwrap_or(usize::MAX),
            max_script_size: config.managesieve.max_script_size,
            max_storage: config.managesieve.max_storage,
            max_connections_per_ip: usize::try_from(config.managesieve.max_connections_per_ip)
                .unwrap_or(usize::MAX),
            max_connections_per_user: usize::try_from(config.managesieve.max_connections_per_user)
                .unwrap_or(usize::MAX),
            ..mailstead_managesieve::Limits::default()
        },
        config.managesieve.login_on_loopback_without_tls,
    );
    let managesieve = Arc::new(managesieve.with_authenticator(auth.clone()));

    let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut receiver = stop_receiver.clone();
        async move {
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    };
    let mut servers = tokio::task::JoinSet::new();
    let queue_runner = {
        let queue = queue.clone();
        let stopped = stopped();
        tokio::spawn(async move { queue.run(stopped).await })
    };
    // Mailbox sizes over time, in MUM's table.
    let size_recorder = (!config.stats.size_interval.is_zero()).then(|| {
        tokio::spawn(crate::sizes::run(
            directory.clone(),
            config.stats.size_interval,
            config.stats.size_keep,
            stopped(),
        ))
    });
    let control_path = queue.socket_path();
    let _ = std::fs::remove_file(&control_path);
    match tokio::net::UnixListener::bind(&control_path) {
        Ok(listener) => {
            servers.spawn(mailstead_net::serve(
                listener.into(),
                Arc::new(mailstead_queue::control::Control(queue.clone())),
                mailstead_net::ListenerOptions { implicit_tls: None },
                connections.clone(),
                stopped(),
            ));
        }
        Err(err) => {
            warn!(path = %control_path.display(), cause = %err, "no queue control socket; `mailstead queue` will not reach this server")
        }
    }
    let readiness = mailstead_http::Readiness::default();
    let http = Arc::new(mailstead_http::HttpContext {
        directory: directory.clone(),
        hostname: config.hostname().to_owned(),
        services: mail_services(config),
        mta_sts: mta_sts(config),
        readiness: readiness.clone(),
        limits: mailstead_http::Limits {
            request_timeout: config.http.request_timeout,
            max_connections_per_ip: usize::try_from(config.http.max_connections_per_ip)
                .unwrap_or(usize::MAX),
        },
        // Checked when the config was read.
        metrics_allow: config
            .http
            .metrics_allow
            .iter()
            .filter_map(|network| network.parse().ok())
            .collect(),
        events_dir: config.events_dir(),
        api: mailstead_http::ApiContext::new(auth.clone(), Some(queue.clone())),
    });
    for (name, listener) in listeners {
        let connections = connections.clone();
        // Every listener counts for /readyz while its accept loop runs.
        let mut tracked = TrackedSet(&mut servers, &readiness, name);
        match listener {
            Bound::Smtp(listener) => {
                tracked.spawn(mailstead_smtp::serve(
                    listener,
                    context(Mode::Smtp),
                    connections,
                    stopped(),
                ));
            }
            Bound::LmtpTcp(listener) => {
                tracked.spawn(mailstead_smtp::serve(
                    listener,
                    context(Mode::Lmtp),
                    connections,
                    stopped(),
                ));
            }
            Bound::LmtpUnix(listener) => {
                tracked.spawn(mailstead_smtp::serve_unix(
                    listener,
                    context(Mode::Lmtp),
                    connections,
                    stopped(),
                ));
            }
            Bound::Submission(listener) => {
                tracked.spawn(mailstead_smtp::serve(
                    listener,
                    context(Mode::Submission),
                    connections,
                    stopped(),
                ));
            }
            Bound::SubmissionTls(listener) => {
                tracked.spawn(mailstead_smtp::serve_implicit_tls(
                    listener,
                    context(Mode::Submission),
                    Arc::clone(&tls_config),
                    connections,
                    stopped(),
                ));
            }
            Bound::Imap(listener, security) => {
                tracked.spawn(mailstead_imap::serve(
                    listener,
                    Arc::clone(&imap),
                    security,
                    connections,
                    stopped(),
                ));
            }
            Bound::Pop3(listener, security) => {
                tracked.spawn(mailstead_pop3::serve(
                    listener,
                    Arc::clone(&pop3),
                    security,
                    connections,
                    stopped(),
                ));
            }
            Bound::ManageSieve(listener) => {
                tracked.spawn(mailstead_managesieve::serve(
                    listener,
                    Arc::clone(&managesieve),
                    Security::StartTls,
                    connections,
                    stopped(),
                ));
            }
            Bound::Http(listener, plain) => {
                tracked.spawn(mailstead_http::serve(
                    listener,
                    Arc::clone(&http),
                    (!plain).then(|| Arc::clone(&tls_config)),
                    connections,
                    stopped(),
                ));
            }
        }
    }

    info!("running until SIGINT or SIGTERM");
    tokio::select! {
        _ = terminate.recv() => info!("SIGTERM received; shutting down"),
        _ = interrupt.recv() => info!("SIGINT received; shutting down"),
    }
    reloader.abort();
    tmp_cleaner.abort();
    if let Some(recorder) = size_recorder {
        recorder.abort();
    }
    let _ = stop_sender.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        info!("sessions still running after {SHUTDOWN_GRACE:?}; stopping them");
        servers.abort_all();
    }
    // Attempts in progress finish (their state is written); the rest waits for the next start.
    if tokio::time::timeout(SHUTDOWN_GRACE, queue_runner)
        .await
        .is_err()
    {
        info!("queue attempts still running after {SHUTDOWN_GRACE:?}; left for the next start");
    }
    // Folders kept open after their last session write what their index lacks.
    mail_store.flush().await;
    let _ = std::fs::remove_file(&control_path);
    // What the last sessions and attempts recorded goes to its file.
    let _ = tokio::task::spawn_blocking(move || event_log.stop()).await;
    drop(watcher);
    directory.close().await;
    info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Reloads the certificate on SIGHUP and, every `check` (unless zero), when its files
/// changed. A pair that fails to load is logged and the one in use kept.
async fn reload_certificate(
    mut reloader: tls::CertificateReloader,
    mut hangup: tokio::signal::unix::Signal,
    check: Duration,
) {
    let mut ticks = (!check.is_zero()).then(|| {
        let mut interval = tokio::time::interval(check);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    loop {
        let result = tokio::select! {
            received = hangup.recv() => {
                if received.is_none() {
                    return;
                }
                info!("SIGHUP received; reloading the TLS certificate");
                Some(reloader.reload())
            }
            _ = async {
                match ticks.as_mut() {
                    Some(interval) => interval.tick().await,
                    None => std::future::pending().await,
                }
            } => reloader.reload_if_changed(),
        };
        match result {
            None => {}
            Some(Ok(())) => info!("TLS certificate reloaded; new sessions use it"),
            Some(Err(err)) => {
                error!(cause = %err, "cannot reload the TLS certificate; keeping the one in use");
            }
        }
    }
}

/// Removes, in every mailbox's Maildir, the files left in `tmp/` from before `started` (a
/// crash between writing a message and linking it into `new/`). Only files older than the
/// start are touched, so deliveries already running are safe. Failures are logged.
async fn clean_maildir_tmps(directory: Directory, started: SystemTime) {
    let mailboxes = match directory.list_mailboxes(None).await {
        Ok(mailboxes) => mailboxes,
        Err(err) => {
            warn!(cause = %err, "cannot list mailboxes to clean their Maildir tmp/");
            return;
        }
    };
    let mut removed = 0u64;
    for mailbox in &mailboxes {
        if unsafe_location(&mailbox.address, &mailbox.location).is_some() {
            continue; // Another writer's row that could reach someone else's files.
        }
        match mailstead_store::clean_maildir_tmp(&mailbox.location.maildir, started).await {
            Ok(count) => removed += count,
            Err(err) => warn!(
                mailbox = %mailbox.address,
                cause = %err,
                "cannot clean the Maildir's tmp/"
            ),
        }
    }
    info!(
        mailboxes = mailboxes.len(),
        removed, "cleaned leftovers in Maildir tmp/ directories"
    );
}

/// Notes in the shared index the owners whose `dovecot-acl` files give someone `l`, so that
/// ACLs written by hand or by Dovecot show in `LIST "Shared/%"` as SETACL's do.
async fn index_shared_owners(
    directory: Directory,
    mail: MailStore,
    index: Arc<mailstead_store::acl::SharedIndex>,
) {
    let mailboxes = match directory.list_mailboxes(None).await {
        Ok(mailboxes) => mailboxes,
        Err(err) => {
            warn!(cause = %err, "cannot list mailboxes to index shared folders");
            return;
        }
    };
    let mut noted = 0;
    for mailbox in &mailboxes {
        if unsafe_location(&mailbox.address, &mailbox.location).is_some() {
            continue;
        }
        let layout = match mailbox.location.layout {
            mailstead_directory::model::MaildirLayout::Fs => mailstead_store::FolderLayout::Fs,
            mailstead_directory::model::MaildirLayout::MaildirPlusPlus => {
                mailstead_store::FolderLayout::MaildirPlusPlus
            }
        };
        // Not yet delivered to: nothing shared.
        let Ok(tree) = mail.open_tree(&mailbox.location.maildir, layout) else {
            continue;
        };
        let Ok(folders) = tree.list().await else {
            continue;
        };
        let dirs: Vec<_> = folders
            .iter()
            .filter_map(|folder| tree.folder_path(&folder.name).ok())
            .collect();
        let owner = mailbox.address.to_string();
        let index = Arc::clone(&index);
        match tokio::task::spawn_blocking(move || index.record_owner(&owner, dirs)).await {
            Ok(Ok(count)) => noted += count,
            Ok(Err(err)) => {
                warn!(cause = %err, "shared mailbox index not updated");
                return;
            }
            Err(_) => return,
        }
    }
    info!(
        mailboxes = mailboxes.len(),
        grants = noted,
        "indexed shared folders"
    );
}

/// The set of listener tasks, each spawned under its name in the readiness list.
struct TrackedSet<'a>(
    &'a mut tokio::task::JoinSet<()>,
    &'a mailstead_http::Readiness,
    String,
);

impl TrackedSet<'_> {
    fn spawn(&mut self, serving: impl Future<Output = ()> + Send + 'static) {
        let name = std::mem::take(&mut self.2);
        self.0.spawn(self.1.track(name, serving));
    }
}

/// The MTA-STS policy of `[http]`.
pub(crate) fn mta_sts(config: &Config) -> mailstead_http::MtaSts {
    mailstead_http::MtaSts {
        mode: match config.http.mta_sts_mode {
            MtaStsMode::Enforce => mailstead_http::MtaStsMode::Enforce,
            MtaStsMode::Testing => mailstead_http::MtaStsMode::Testing,
            MtaStsMode::None => mailstead_http::MtaStsMode::None,
        },
        max_age: config.http.mta_sts_max_age,
    }
}

/// The mail services autoconfiguration (and `mailstead dns`) tells clients about: the port of
/// every configured IMAP, POP3 and submission listener.
pub(crate) fn mail_services(config: &Config) -> mailstead_http::MailServices {
    use mailstead_http::{Endpoint, MailServices, Security};
    let mut services = MailServices::default();
    let add = |list: &mut Vec<Endpoint>, addresses: &[String], security: Security| {
        for address in addresses {
            if let Some(port) = address
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse::<u16>().ok())
            {
                MailServices::add(list, Endpoint { port, security });
            }
        }
    };
    add(
        &mut services.imap,
        &config.imap.listen_tls,
        Security::ImplicitTls,
    );
    add(&mut services.imap, &config.imap.listen, Security::StartTls);
    add(
        &mut services.pop3,
        &config.pop3.listen_tls,
        Security::ImplicitTls,
    );
    add(&mut services.pop3, &config.pop3.listen, Security::StartTls);
    add(
        &mut services.submission,
        &config.submission.listen_tls,
        Security::ImplicitTls,
    );
    add(
        &mut services.submission,
        &config.submission.listen,
        Security::StartTls,
    );
    services
}

/// How long sessions receiving a message may take to finish it after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

/// A listener bound at start, before it is served.
enum Bound {
    Smtp(tokio::net::TcpListener),
    LmtpTcp(tokio::net::TcpListener),
    LmtpUnix(tokio::net::UnixListener),
    Imap(tokio::net::TcpListener, Security),
    Pop3(tokio::net::TcpListener, mailstead_pop3::Security),
    ManageSieve(tokio::net::TcpListener),
    Submission(tokio::net::TcpListener),
    SubmissionTls(tokio::net::TcpListener),
    /// Plain (on loopback) or HTTPS.
    Http(tokio::net::TcpListener, bool),
}

/// Binds every configured listener, or fails on the first address that cannot be bound.
async fn bind_listeners(config: &Config) -> Result<Vec<(String, Bound)>, CliError> {
    let mut bound = Vec::new();
    for address in &config.smtp.listen {
        bound.push((
            format!("smtp {address}"),
            Bound::Smtp(bind_tcp(address, "smtp.listen").await?),
        ));
        info!(%address, "SMTP listening");
    }
    for address in &config.lmtp.listen {
        match address.strip_prefix("unix:") {
            Some(path) => {
                // A socket left by an earlier run would make bind fail.
                let _ = std::fs::remove_file(path);
                let listener = tokio::net::UnixListener::bind(path).map_err(|source| CliError::Io {
                    what: format!(
                        "cannot listen for LMTP on {address} (check that the directory exists and is writable, or change lmtp.listen)"
                    ),
                    source,
                })?;
                // The local MTA connects as its own user (Dovecot's LMTP socket is 0666 too);
                // the umask made it private.
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(
                    |source| CliError::Io {
                        what: format!("cannot open the LMTP socket {path} to local users"),
                        source,
                    },
                )?;
                bound.push((format!("lmtp {address}"), Bound::LmtpUnix(listener)));
            }
            None => bound.push((
                format!("lmtp {address}"),
                Bound::LmtpTcp(bind_tcp(address, "lmtp.listen").await?),
            )),
        }
        info!(%address, "LMTP listening");
    }
    for address in &config.submission.listen {
        bound.push((
            format!("submission {address}"),
            Bound::Submission(bind_tcp(address, "submission.listen").await?),
        ));
        info!(%address, "submission listening (STARTTLS)");
    }
    for address in &config.submission.listen_tls {
        bound.push((
            format!("submission {address}"),
            Bound::SubmissionTls(bind_tcp(address, "submission.listen_tls").await?),
        ));
        info!(%address, "submission listening (implicit TLS)");
    }
    let imap_listeners = [
        (&config.imap.listen, Security::StartTls, "imap.listen"),
        (
            &config.imap.listen_tls,
            Security::ImplicitTls,
            "imap.listen_tls",
        ),
    ];
    for (addresses, security, key) in imap_listeners {
        for address in addresses {
            bound.push((
                format!("imap {address}"),
                Bound::Imap(bind_tcp(address, key).await?, security),
            ));
            info!(%address, ?security, "IMAP listening");
        }
    }
    let pop3_listeners = [
        (&config.pop3.listen, Security::StartTls, "pop3.listen"),
        (
            &config.pop3.listen_tls,
            Security::ImplicitTls,
            "pop3.listen_tls",
        ),
    ];
    for (addresses, security, key) in pop3_listeners {
        for address in addresses {
            bound.push((
                format!("pop3 {address}"),
                Bound::Pop3(bind_tcp(address, key).await?, security),
            ));
            info!(%address, ?security, "POP3 listening");
        }
    }
    for address in &config.managesieve.listen {
        bound.push((
            format!("managesieve {address}"),
            Bound::ManageSieve(bind_tcp(address, "managesieve.listen").await?),
        ));
        info!(%address, "ManageSieve listening (STARTTLS)");
    }
    for address in &config.http.listen {
        let listener = bind_tcp(address, "http.listen").await?;
        let plain = listener
            .local_addr()
            .is_ok_and(|local| mailstead_http::plain_on(&local));
        bound.push((format!("http {address}"), Bound::Http(listener, plain)));
        info!(%address, tls = !plain, "HTTP listening");
    }
    Ok(bound)
}

async fn bind_tcp(address: &str, key: &str) -> Result<tokio::net::TcpListener, CliError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| {
            let hint = match source.kind() {
                std::io::ErrorKind::PermissionDenied => format!(
                    "ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep on the binary), or change {key}"
                ),
                std::io::ErrorKind::AddrInUse => format!(
                    "another program (Postfix?) already listens there; stop it or change {key}"
                ),
                _ => format!("check the address or change {key}"),
            };
            CliError::Io {
                what: format!("cannot listen on {address} ({hint})"),
                source,
            }
        })
}

/// The queue's retry rules from `[queue]`.
fn queue_config(config: &Config) -> mailstead_queue::QueueConfig {
    let section = &config.queue;
    let mut queue = mailstead_queue::QueueConfig::new(
        config.data_dir().join("queue"),
        config.hostname().to_owned(),
    );
    queue.min_backoff = section.min_backoff;
    queue.max_backoff = section.max_backoff;
    queue.max_age = section.max_age;
    queue.delay_warning = (!section.delay_warning.is_zero()).then_some(section.delay_warning);
    queue.max_active = section.max_active;
    queue
}

/// The SMTP client's settings from `[queue]`, reading the relay password and CA file.
fn outbound_config(config: &Config) -> Result<mailstead_queue::OutboundConfig, CliError> {
    let section = &config.queue;
    let relay_host = (!section.relay_host.is_empty())
        .then(|| mailstead_directory::model::NextHop::parse(&section.relay_host))
        .transpose()
        .map_err(|why| CliError::Config(format!("queue.relay_host: {why}")))?;
    let relay_auth = match &section.relay_auth_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
                what: format!("cannot read queue.relay_auth_file {}", path.display()),
                source,
            })?;
            let mut words = text.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(login), Some(password), None) => {
                    Some(mailstead_queue::outbound::Credentials {
                        login: login.to_owned(),
                        password: password.to_owned(),
                    })
                }
                _ => {
                    return Err(CliError::Config(format!(
                        "queue.relay_auth_file {}: write one line: the login, a space, the password",
                        path.display()
                    )));
                }
            }
        }
    };
    let extra_roots = match &section.ca_file {
        None => Vec::new(),
        Some(path) => {
            use rustls_pki_types::pem::PemObject;
            rustls_pki_types::CertificateDer::pem_file_iter(path)
                .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
                .map_err(|err| {
                    CliError::Config(format!("queue.ca_file {}: {err}", path.display()))
                })?
        }
    };
    Ok(mailstead_queue::OutboundConfig {
        hostname: config.hostname().to_owned(),
        name_servers: section
            .name_servers
            .iter()
            .filter_map(|server| server.parse().ok())
            .collect(),
        trust_ad_bit: section.dnssec,
        relay_host,
        relay_auth,
        extra_roots,
        smtp_port: section.smtp_port,
        connect_timeout: section.connect_timeout,
        command_timeout: section.command_timeout,
        max_connections_per_destination: section.max_connections_per_destination,
        max_connections: section.max_connections,
        idle_connection_time: Duration::from_secs(5),
    })
}
