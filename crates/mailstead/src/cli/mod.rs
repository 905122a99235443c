//! The command line: the argument grammar (clap) and one module per command group.
//!
//! # Layout
//! - this file: [`Cli`], the top-level [`Command`]s, [`run`] (dispatch) and [`Ctx`], what every
//!   command gets (configuration, `--json`, the audit actor, the directory).
//! - `exit`: exit statuses and the error → status map.
//! - `password`: reading passwords from the terminal or standard input, never from argv.
//! - `serve`, `db`, `domain`, `mailbox`, `alias`, `sender`, `alias_domain`, `tls_policy`,
//!   `transport`, `dkim`, `dns`, `token`, `admins` (domain and mailbox admin grants), `query` (resolve, auth test, may-send, audit), `import`, `queue`, `report`: the commands.

pub mod exit;

mod acl_group;
mod admins;
mod alias;
mod alias_domain;
mod db;
mod dkim;
mod dns;
mod domain;
mod import;
mod mailbox;
mod password;
mod query;
mod queue;
mod report;
mod sender;
mod serve;
mod tls_policy;
mod token;
mod transport;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

use mailstead_admin::output;
use mailstead_directory::access::Actor;
use mailstead_directory::{Directory, DirectoryError, DirectoryOptions};

use crate::cli::exit::CliError;
use crate::config::{self, Config, DatabaseKind};

/// Mailstead: a mail server with a SQL directory in MUM's schema, and its management commands.
#[derive(Debug, Parser)]
#[command(name = "mailstead", version)]
pub struct Cli {
    /// Config file; without one, the built-in defaults (data in ./data)
    #[arg(long, global = true, env = "MAILSTEAD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server until SIGINT or SIGTERM
    Serve,
    /// Check a config file
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The directory database's schema
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Hosted domains
    #[command(subcommand)]
    Domain(domain::DomainCommand),
    /// Mailboxes: logins that receive mail
    #[command(subcommand)]
    Mailbox(mailbox::MailboxCommand),
    /// Aliases: addresses that forward (@domain is a catch-all)
    #[command(subcommand)]
    Alias(alias::AliasCommand),
    /// Who may send as an alias
    #[command(subcommand)]
    Sender(sender::SenderCommand),
    /// Domains that receive as another domain
    #[command(subcommand)]
    AliasDomain(alias_domain::AliasDomainCommand),
    /// TLS policies for mail to remote domains
    #[command(subcommand)]
    TlsPolicy(tls_policy::TlsPolicyCommand),
    /// Where mail for remote domains goes instead of their MX
    #[command(subcommand)]
    Transport(transport::TransportCommand),
    /// DKIM keys that sign mail from hosted domains
    #[command(subcommand)]
    Dkim(dkim::DkimCommand),
    /// Every DNS record DOMAIN needs (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, SRV), as zone-file lines
    Dns { domain: String },
    /// Tokens for the HTTP API
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// What happens to mail for these addresses, and why
    Resolve {
        #[arg(required = true, value_name = "ADDRESS")]
        addresses: Vec<String>,
    },
    /// Test logins
    #[command(subcommand)]
    Auth(query::AuthCommand),
    /// May LOGIN use FROM as its sender? (exit 1 when not)
    MaySend { login: String, from: String },
    /// The newest changes, newest first
    Audit {
        /// How many entries
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: u32,
    },
    /// Import from a Dovecot passwd-file or a MUM database
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// A summary of the mail of a period (like pflogsumm): totals, top senders and recipients,
    /// rejections, failed logins
    Report(report::ReportArgs),
    /// The outbound queue: list, show, retry, hold, release, remove, flush
    #[command(subcommand)]
    Queue(queue::QueueCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate a config file, then summarise it (exit 78 when invalid)
    Check {
        /// The file; default: --config, else the built-in defaults
        file: Option<PathBuf>,
    },
}

/// What every command gets.
pub struct Ctx {
    pub config: Config,
    pub json: bool,
}

impl Ctx {
    /// Opens the directory. A brand-new SQLite file (the embedded default) gets its schema made
    /// here, so a fresh install works without `db migrate`; any other database must be
    /// migrated on purpose, since it may be MUM's own.
    pub async fn directory(&self) -> anyhow::Result<Directory> {
        let options = directory_options(&self.config);
        match Directory::open(options.clone()).await {
            Ok(directory) => Ok(directory),
            Err(DirectoryError::SchemaTooOld { database: 0, .. })
                if self.config.directory_kind() == DatabaseKind::Sqlite =>
            {
                let (directory, report) = Directory::open_and_migrate(options).await?;
                eprintln!(
                    "mailstead: created the directory database {} (schema version {})",
                    self.config.directory_url_redacted(),
                    report.to_version
                );
                Ok(directory)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Prints `value` as JSON with `--json`, else the text `text` makes.
    pub fn show<T: Serialize + ?Sized>(
        &self,
        value: &T,
        text: impl FnOnce() -> String,
    ) -> anyhow::Result<()> {
        let out = if self.json {
            output::json(value)?
        } else {
            text()
        };
        emit(&out)
    }
}

/// Runs a parsed command line.
///
/// # Errors
/// Whatever stops the command; [`exit::code_for`] turns it into a status.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Config(ConfigCommand::Check { file }) = &cli.command {
        let path = file.as_deref().or(cli.config.as_deref());
        emit(&config::check_report(path)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let config = Config::load(cli.config.as_deref())?;
    let serving = matches!(cli.command, Command::Serve);
    init_logging(&config, serving);
    let ctx = Ctx {
        config,
        json: cli.json,
    };
    match cli.command {
        Command::Serve => serve::run(&ctx).await,
        // Handled above, before a config file is required to be valid.
        Command::Config(ConfigCommand::Check { .. }) => Ok(ExitCode::SUCCESS),
        Command::Db(command) => db::run(&ctx, command).await,
        Command::Domain(command) => domain::run(&ctx, command).await,
        Command::Mailbox(command) => mailbox::run(&ctx, command).await,
        Command::Alias(command) => alias::run(&ctx, command).await,
        Command::Sender(command) => sender::run(&ctx, command).await,
        Command::AliasDomain(command) => alias_domain::run(&ctx, command).await,
        Command::TlsPolicy(command) => tls_policy::run(&ctx, command).await,
        Command::Transport(command) => transport::run(&ctx, command).await,
        Command::Dkim(command) => dkim::run(&ctx, command).await,
        Command::Dns { domain } => dns::run(&ctx, &domain).await,
        Command::Token(command) => token::run(&ctx, command).await,
        Command::Resolve { addresses } => query::resolve(&ctx, &addresses).await,
        Command::Auth(command) => query::auth(&ctx, command).await,
        Command::MaySend { login, from } => query::may_send(&ctx, &login, &from).await,
        Command::Audit { limit } => query::audit(&ctx, limit).await,
        Command::Import(command) => import::run(&ctx, command).await,
        Command::Queue(command) => queue::run(&ctx, command).await,
        Command::Report(args) => report::run(&ctx, args).await,
    }
}

/// The server logs at the configured level; the other commands only show errors (their
/// answers are their output), unless `RUST_LOG` asks for more. Logs go to stderr.
fn init_logging(config: &Config, serving: bool) {
    let filter = if serving {
        config.log.level.clone()
    } else {
        std::env::var("RUST_LOG").unwrap_or_else(|_| "error".to_owned())
    };
    // The config's level was validated when it was loaded; a bad RUST_LOG falls back.
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    // Fails only if a subscriber is already set, which cannot happen in this process.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The login service's options from the configuration.
pub fn auth_options(config: &Config) -> mailstead_auth::AuthOptions {
    mailstead_auth::AuthOptions {
        failure_window: config.auth.failure_window,
        max_failures_per_address: config.auth.max_failures_per_address,
        max_failures_per_account: config.auth.max_failures_per_account,
        failure_delay: config.auth.failure_delay,
        max_failure_delay: config.auth.max_failure_delay,
        cache_ttl: config.auth.cache_ttl,
        cache_size: config.auth.cache_size,
        // Checked when the config was read.
        trusted_networks: config
            .auth
            .trusted_networks
            .iter()
            .filter_map(|network| network.parse().ok())
            .collect(),
        ..mailstead_auth::AuthOptions::default()
    }
}

/// The directory's options from the configuration.
pub fn directory_options(config: &Config) -> DirectoryOptions {
    let directory = &config.directory;
    let mut options = DirectoryOptions::new(config.directory_url(), "");
    options.max_connections = directory.max_connections;
    options.cache_capacity = directory.cache_capacity;
    options.cache_ttl = directory.cache_ttl;
    options.negative_cache_ttl = directory.negative_cache_ttl;
    options.change_poll = directory.change_poll;
    options.recipient_delimiter = directory.recipient_delimiter.clone();
    options.expansion_limit = usize::try_from(directory.expansion_limit).unwrap_or(usize::MAX);
    options.recursion_limit = usize::try_from(directory.recursion_limit).unwrap_or(usize::MAX);
    options.homedir_template = config.homedir_template();
    options.maildir_template = config.maildir_template();
    options
}

/// Who the audit log names for a change made here: `cli:<unix user>`, from `cli`.
pub fn actor() -> Actor {
    let from_env = std::env::var("USER").ok().filter(|user| !user.is_empty());
    let user = from_env.or_else(|| {
        let output = std::process::Command::new("id").arg("-un").output().ok()?;
        let name = String::from_utf8(output.stdout).ok()?;
        let name = name.trim();
        (output.status.success() && !name.is_empty()).then(|| name.to_owned())
    });
    let name = match user {
        Some(user) => format!("cli:{user}"),
        None => "cli".to_owned(),
    };
    Actor::new(name, "cli")
}

/// Writes to stdout. A closed pipe (`mailstead … | head`) is not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(CliError::Io {
            what: "cannot write to standard output".to_owned(),
            source,
        }
        .into()),
        Ok(()) => Ok(()),
    }
}

/// `--activate`/`--deactivate` and the like, as a change: `None` when neither is given.
pub fn toggle(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// `--description TEXT` as a change; an empty text clears it.
pub fn text_change(value: Option<String>) -> Option<Option<String>> {
    value.map(|text| Some(text).filter(|text| !text.is_empty()))
}

/// Refuses an update that changes nothing, instead of auditing an empty change.
pub fn require_change(changed: bool, command: &str) -> anyhow::Result<()> {
    if changed {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "nothing to change; give at least one option (see `mailstead {command} --help`)"
    ))
    .into())
}

/// Value parsers for clap: each error is the admin crate's sentence.
pub mod values {
    use mailstead_admin::input;
    use mailstead_directory::model::{DkimAlgorithm, Quota, TlsPolicyKind};

    /// A quota, or `inherit` for the domain's.
    #[derive(Clone, Copy, Debug)]
    pub struct QuotaSetting(pub Option<Quota>);

    /// A limit, or `none`.
    #[derive(Clone, Copy, Debug)]
    pub struct Limit(pub Option<i64>);

    pub fn quota(text: &str) -> Result<Quota, String> {
        input::parse_quota(text).map_err(|err| err.to_string())
    }

    pub fn quota_setting(text: &str) -> Result<QuotaSetting, String> {
        input::parse_quota_or_inherit(text)
            .map(QuotaSetting)
            .map_err(|err| err.to_string())
    }

    pub fn max_quota(text: &str) -> Result<Limit, String> {
        input::parse_max_quota_gib(text)
            .map(Limit)
            .map_err(|err| err.to_string())
    }

    pub fn count_limit(text: &str) -> Result<Limit, String> {
        input::parse_limit(text, "limit")
            .map(Limit)
            .map_err(|err| err.to_string())
    }

    pub fn tls_policy(text: &str) -> Result<TlsPolicyKind, String> {
        TlsPolicyKind::parse(text)
    }

    pub fn dkim_algorithm(text: &str) -> Result<DkimAlgorithm, String> {
        DkimAlgorithm::parse(text)
    }
}
