//! One POP3 session: the AUTHORIZATION, TRANSACTION and UPDATE states of RFC 1939, command
//! dispatch and the replies.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mailstead_auth::sasl::{Exchange, Mechanism, SaslError, Step};
use mailstead_auth::{AuthOutcome, LoginAttempt, Service};
use mailstead_directory::model::MaildirLayout;
use mailstead_net::{Closing, ConnectionHandle, LogSafe, Slot};
use mailstead_store::{FlagOperation, Folder, FolderLayout, SystemFlags};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::Pop3Context;
use crate::command::Command;
use crate::connection::{Connection, Io, LineTooLong};
use crate::maildrop::Maildrop;
use crate::multiline::MultiLine;
use crate::parser::{ParseError, parse_command};

/// What an evicted connection is told (the server is full and it had not logged in).
pub(crate) const EVICTED: &[u8] = b"-ERR [SYS/TEMP] Server full, try again later.\r\n";
const SHUTTING_DOWN: &[u8] = b"-ERR [SYS/TEMP] Server shutting down.\r\n";
const PLAINTEXT_DISALLOWED: &str =
    "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.";
/// How much of a message file RETR reads at a time.
const READ_CHUNK: usize = 64 * 1024;

/// What to do after a command.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// A logged-in user: the TRANSACTION state.
struct User {
    address: String,
    folder: Arc<Folder>,
    maildrop: Maildrop,
    /// Counts this session against the user's connection limit until dropped.
    _slot: Slot<String>,
}

pub(crate) struct Session {
    ctx: Arc<Pop3Context>,
    conn: Connection,
    peer: IpAddr,
    /// The name given by USER, waiting for PASS.
    user_name: Option<String>,
    user: Option<User>,
    failed_logins: u32,
    bad_commands: u32,
    connection: ConnectionHandle,
    login_deadline: Instant,
}

pub(crate) async fn run(
    stream: Box<dyn Io>,
    peer: IpAddr,
    tls: bool,
    ctx: Arc<Pop3Context>,
    connection: ConnectionHandle,
) {
    let conn = Connection::new(stream, ctx.limits.max_line, tls);
    let login_deadline = Instant::now() + ctx.limits.login_timeout;
    let mut session = Session {
        ctx,
        conn,
        peer,
        user_name: None,
        user: None,
        failed_logins: 0,
        bad_commands: 0,
        connection,
        login_deadline,
    };
    if let Err(err) = session.serve().await {
        debug!(peer = %session.peer, cause = %err, "POP3 connection ended");
    }
    session.conn.shutdown().await;
}

impl Session {
    async fn serve(&mut self) -> io::Result<()> {
        self.conn.write(b"+OK Mailstead ready.\r\n").await?;
        loop {
            let flow = if self.user.is_some() {
                let timeout = self.ctx.limits.idle_timeout;
                match tokio::time::timeout(timeout, self.step()).await {
                    Ok(flow) => flow?,
                    Err(_elapsed) => {
                        self.conn
                            .write(b"-ERR Disconnected for inactivity.\r\n")
                            .await?;
                        return Ok(());
                    }
                }
            } else {
                // The whole unauthenticated life is bounded, not each wait.
                match tokio::time::timeout_at(self.login_deadline, self.step()).await {
                    Ok(flow) => flow?,
                    Err(_elapsed) => {
                        self.conn
                            .write(b"-ERR Disconnected for inactivity during authentication.\r\n")
                            .await?;
                        return Ok(());
                    }
                }
            };
            // Logged in, the session is no longer evictable to make room for others.
            self.connection.set_pre_login(self.user.is_none());
            self.connection.set_logged_in(self.user.is_some());
            if flow == Flow::Close {
                return Ok(());
            }
        }
    }

    /// Reads one command and answers it.
    async fn step(&mut self) -> io::Result<Flow> {
        let line = tokio::select! {
            biased;
            closing = self.connection.closing() => {
                let goodbye = match closing {
                    Closing::Shutdown => SHUTTING_DOWN,
                    Closing::Evicted => EVICTED,
                };
                self.conn.write(goodbye).await?;
                return Ok(Flow::Close);
            }
            line = self.conn.read_line() => line?,
        };
        let Some(line) = line else {
            return Ok(Flow::Close);
        };
        let Ok(line) = line else {
            self.conn.write(b"-ERR Input line too long.\r\n").await?;
            return Ok(Flow::Close);
        };
        match parse_command(&line) {
            Ok(command) => self.dispatch(command).await,
            Err(err) => {
                let text = match err {
                    ParseError::Unknown => "Unknown command.".to_owned(),
                    ParseError::Syntax(why) => format!("{why}."),
                };
                self.refuse(&text).await
            }
        }
    }

    /// An `-ERR` for a command that should not have been sent; too many close the session.
    async fn refuse(&mut self, text: &str) -> io::Result<Flow> {
        self.bad_commands += 1;
        if self.bad_commands >= self.ctx.limits.max_bad_commands {
            self.conn
                .write(format!("-ERR {text} Too many bad commands.\r\n").as_bytes())
                .await?;
            return Ok(Flow::Close);
        }
        self.reply_err(text).await
    }

    async fn reply_ok(&mut self, text: &str) -> io::Result<Flow> {
        let line = if text.is_empty() {
            "+OK\r\n".to_owned()
        } else {
            format!("+OK {text}\r\n")
        };
        self.conn.write(line.as_bytes()).await?;
        Ok(Flow::Continue)
    }

    async fn reply_err(&mut self, text: &str) -> io::Result<Flow> {
        self.conn
            .write(format!("-ERR {text}\r\n").as_bytes())
            .await?;
        Ok(Flow::Continue)
    }

    async fn dispatch(&mut self, command: Command) -> io::Result<Flow> {
        match command {
            Command::Capa => self.capa().await,
            Command::Quit => self.quit().await,
            Command::Noop if self.user.is_some() => self.reply_ok("").await,
            command if self.user.is_none() => self.authorization(command).await,
            command => self.transaction(command).await,
        }
    }

    async fn capa(&mut self) -> io::Result<Flow> {
        let mut capa =
            String::from("+OK\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n");
        if self.user.is_none() {
            if self.login_allowed() {
                capa.push_str("USER\r\nSASL PLAIN LOGIN\r\n");
            }
            if !self.conn.tls && self.ctx.tls.is_some() {
                capa.push_str("STLS\r\n");
            }
        }
        capa.push_str("IMPLEMENTATION Mailstead\r\n.\r\n");
        self.conn.write(capa.as_bytes()).await?;
        Ok(Flow::Continue)
    }

    /// Passwords only over TLS, or on loopback when configured (as IMAP decides).
    fn login_allowed(&self) -> bool {
        self.conn.tls || (self.ctx.login_on_loopback_without_tls && self.peer.is_loopback())
    }

    async fn authorization(&mut self, command: Command) -> io::Result<Flow> {
        match command {
            Command::Stls => self.stls().await,
            Command::User(name) => {
                if !self.login_allowed() {
                    self.conn
                        .write(format!("{PLAINTEXT_DISALLOWED}\r\n").as_bytes())
                        .await?;
                    return Ok(Flow::Continue);
                }
                self.user_name = Some(name);
                self.reply_ok("").await
            }
            Command::Pass(password) => {
                let Some(name) = self.user_name.take() else {
                    return self.refuse("No username given.").await;
                };
                self.log_in(&name, &password).await
            }
            Command::Auth {
                mechanism: None, ..
            } => {
                self.conn.write(b"+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n").await?;
                Ok(Flow::Continue)
            }
            Command::Auth {
                mechanism: Some(mechanism),
                initial_response,
            } => self.authenticate(&mechanism, initial_response).await,
            _ => self.refuse("Unknown AUTHORIZATION state command.").await,
        }
    }

    async fn stls(&mut self) -> io::Result<Flow> {
        if self.conn.tls {
            return self.refuse("TLS is already active.").await;
        }
        let Some(tls) = self.ctx.tls.as_ref().map(|tls| tls.get()) else {
            return self.refuse("TLS support isn't enabled.").await;
        };
        self.conn
            .write(b"+OK Begin TLS negotiation now.\r\n")
            .await?;
        // A failed handshake leaves nothing to talk over: the error ends the session.
        self.conn.start_tls(tls).await?;
        // What the client said before TLS does not count after it (RFC 2595 4).
        self.user_name = None;
        Ok(Flow::Continue)
    }

    async fn authenticate(
        &mut self,
        mechanism: &str,
        initial_response: Option<String>,
    ) -> io::Result<Flow> {
        if !self.login_allowed() {
            self.conn
                .write(format!("{PLAINTEXT_DISALLOWED}\r\n").as_bytes())
                .await?;
            return Ok(Flow::Continue);
        }
        let initial = match initial_response.as_deref() {
            None => None,
            // An empty initial response (RFC 5034 4).
            Some("=") => Some(Vec::new()),
            Some(encoded) => match BASE64.decode(encoded) {
                Ok(decoded) => Some(decoded),
                Err(_) => {
                    return self
                        .refuse("Invalid base64 data in initial response.")
                        .await;
                }
            },
        };
        let Some(mechanism) = Mechanism::from_name(mechanism) else {
            return self.refuse("Unsupported authentication mechanism.").await;
        };
        let (mut exchange, mut step) = Exchange::start(mechanism, initial);
        loop {
            step = match step {
                Step::Challenge(challenge) => match self.sasl_response(challenge).await? {
                    Ok(response) => exchange.respond(response),
                    Err(flow) => return Ok(flow),
                },
                Step::Credentials { login, password } => {
                    return self.log_in(&login, &password).await;
                }
                Step::Refused(SaslError::MalformedPlain) => {
                    return self.refuse("Invalid AUTH PLAIN response.").await;
                }
                Step::Refused(SaslError::OtherIdentity) => {
                    return self.reply_err("[AUTH] Authorization failed.").await;
                }
                Step::Refused(SaslError::InvalidUserName) => {
                    return self.refuse("Invalid user name.").await;
                }
            };
        }
    }

    /// Sends a `+` challenge and reads the base64 answer; `Err` is how the exchange ended
    /// instead (cancelled by `*`, invalid base64, a line too long).
    async fn sasl_response(&mut self, challenge: &str) -> io::Result<Result<Vec<u8>, Flow>> {
        self.conn
            .write(format!("+ {challenge}\r\n").as_bytes())
            .await?;
        let Some(line) = self.conn.read_line().await? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client left during AUTH",
            ));
        };
        let line = match line {
            Ok(line) => line,
            Err(LineTooLong) => {
                self.conn.write(b"-ERR Input line too long.\r\n").await?;
                return Ok(Err(Flow::Close));
            }
        };
        if line == b"*" {
            return Ok(Err(self
                .reply_err("Authentication aborted by client.")
                .await?));
        }
        match BASE64.decode(line.trim_ascii()) {
            Ok(decoded) => Ok(Ok(decoded)),
            Err(_) => Ok(Err(self.refuse("Invalid base64 data in response.").await?)),
        }
    }

    /// Asks the login service, takes a per-user connection slot and opens INBOX.
    async fn log_in(&mut self, login: &str, password: &[u8]) -> io::Result<Flow> {
        let attempt = LoginAttempt {
            service: Service::Pop3,
            client: self.peer,
            login,
            password,
        };
        // Shutdown does not wait for a queued verification or a failure's delay.
        let outcome = tokio::select! {
            biased;
            closing = self.connection.closing() => {
                let goodbye = match closing {
                    Closing::Shutdown => SHUTTING_DOWN,
                    Closing::Evicted => EVICTED,
                };
                self.conn.write(goodbye).await?;
                return Ok(Flow::Close);
            }
            outcome = self.ctx.auth.log_in(attempt) => outcome,
        };
        let account = match outcome {
            Ok(AuthOutcome::Accepted(account)) => account,
            Ok(AuthOutcome::Refused(refusal)) => {
                // Refusals without verification count too, so a blocked client cannot keep
                // one connection asking.
                self.failed_logins += 1;
                let text: &[u8] = if refusal.is_temporary() {
                    b"-ERR [SYS/TEMP] Too many failed logins, try again later.\r\n"
                } else {
                    b"-ERR [AUTH] Authentication failed.\r\n"
                };
                self.conn.write(text).await?;
                if self.failed_logins >= self.ctx.limits.max_failed_logins {
                    return Ok(Flow::Close);
                }
                return Ok(Flow::Continue);
            }
            Err(err) => {
                error!(peer = %self.peer, cause = %err, "POP3 authentication failed");
                return self
                    .reply_err("[SYS/TEMP] Temporary authentication failure.")
                    .await;
            }
        };
        let address = account.address.to_string();
        let Some(slot) = self
            .ctx
            .user_sessions
            .take(address.clone(), self.ctx.limits.max_connections_per_user)
        else {
            warn!(peer = %self.peer, user = %LogSafe(&address), "too many POP3 connections for one user");
            return self
                .reply_err("[IN-USE] Maximum number of connections for this user exceeded.")
                .await;
        };
        let layout = match account.location.layout {
            MaildirLayout::Fs => FolderLayout::Fs,
            MaildirLayout::MaildirPlusPlus => FolderLayout::MaildirPlusPlus,
        };
        let opened = async {
            let mail = self
                .ctx
                .mail
                .open_account(
                    &account.location.maildir,
                    layout,
                    mailstead_store::QuotaLimit::bytes(account.quota.bytes),
                )
                .await?;
            let folder = mail.open("INBOX").await?;
            folder.sync().await?;
            let snapshot = folder.sized_snapshot().await?;
            let recorded = folder.pop3_records().await?;
            Ok::<_, mailstead_store::MailboxError>((folder, Maildrop::new(&snapshot, &recorded)))
        };
        let (folder, maildrop) = match opened.await {
            Ok(opened) => opened,
            Err(err) => {
                error!(user = %LogSafe(&address), cause = %err, "cannot open the mailbox's INBOX for POP3");
                return self
                    .reply_err("[SYS/TEMP] Cannot open your mailbox, try again later.")
                    .await;
            }
        };
        info!(peer = %self.peer, user = %LogSafe(&address), tls = self.conn.tls, messages = maildrop.stat().0, "POP3 login");
        self.user = Some(User {
            address,
            folder,
            maildrop,
            _slot: slot,
        });
        self.reply_ok("Logged in.").await
    }

    async fn transaction(&mut self, command: Command) -> io::Result<Flow> {
        let Some(user) = self.user.as_mut() else {
            return self.refuse("Not logged in.").await;
        };
        match command {
            Command::Stat => {
                let (count, size) = user.maildrop.stat();
                self.reply_ok(&format!("{count} {size}")).await
            }
            Command::List(None) => {
                let (count, size) = user.maildrop.stat();
                let mut out = format!("+OK {count} messages ({size} octets):\r\n");
                for (number, message) in user.maildrop.present() {
                    out.push_str(&format!("{number} {}\r\n", message.size));
                }
                out.push_str(".\r\n");
                self.conn.write(out.as_bytes()).await?;
                Ok(Flow::Continue)
            }
            Command::List(Some(number)) => match user.maildrop.get(number) {
                Ok(message) => {
                    let size = message.size;
                    self.reply_ok(&format!("{number} {size}")).await
                }
                Err(err) => self.reply_err(&err.to_string()).await,
            },
            Command::Uidl(None) => {
                let mut out = String::from("+OK\r\n");
                for (number, message) in user.maildrop.present() {
                    out.push_str(&format!("{number} {}\r\n", message.uidl));
                }
                out.push_str(".\r\n");
                self.conn.write(out.as_bytes()).await?;
                Ok(Flow::Continue)
            }
            Command::Uidl(Some(number)) => match user.maildrop.get(number) {
                Ok(message) => {
                    let text = format!("{number} {}", message.uidl);
                    self.reply_ok(&text).await
                }
                Err(err) => self.reply_err(&err.to_string()).await,
            },
            Command::Dele(number) => match user.maildrop.delete(number) {
                Ok(()) => self.reply_ok("Marked to be deleted.").await,
                Err(err) => self.reply_err(&err.to_string()).await,
            },
            Command::Rset => {
                user.maildrop.reset();
                self.reply_ok("").await
            }
            Command::Retr(number) => self.send_message(number, MultiLine::whole()).await,
            Command::Top { message, lines } => {
                self.send_message(message, MultiLine::top(lines)).await
            }
            Command::Stls | Command::User(_) | Command::Pass(_) | Command::Auth { .. } => {
                self.refuse("Already logged in.").await
            }
            Command::Capa | Command::Quit | Command::Noop => Ok(Flow::Continue),
        }
    }

    /// RETR and TOP: the message's wire form, dot-stuffed, read a buffer at a time.
    async fn send_message(&mut self, number: u32, mut walk: MultiLine) -> io::Result<Flow> {
        let Some(user) = self.user.as_mut() else {
            return self.refuse("Not logged in.").await;
        };
        let whole = walk.is_whole_message();
        let (uid, size) = match user.maildrop.get(number) {
            Ok(message) => (message.uid, message.size),
            Err(err) => return self.reply_err(&err.to_string()).await,
        };
        let folder = Arc::clone(&user.folder);
        let file = match folder.open_message(uid).await {
            Ok(Some(file)) => file,
            Ok(None) => {
                return self
                    .reply_err("Message was expunged by another session.")
                    .await;
            }
            Err(err) => {
                error!(uid, cause = %err, "cannot open a message for POP3");
                return self
                    .reply_err("[SYS/TEMP] Cannot read the message, try again later.")
                    .await;
            }
        };
        let mut file = tokio::fs::File::from_std(file);
        if whole {
            self.conn
                .write(format!("+OK {size} octets\r\n").as_bytes())
                .await?;
        } else {
            self.conn.write(b"+OK\r\n").await?;
        }
        let mut buffer = vec![0u8; READ_CHUNK];
        let mut form = mailstead_store::form::WireForm::default();
        let mut wire = Vec::with_capacity(READ_CHUNK + READ_CHUNK / 8);
        loop {
            if walk.is_done() {
                break;
            }
            // The reply has started: a read error can only end the connection.
            let read = file.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            wire.clear();
            form.convert(buffer.get(..read).unwrap_or_default(), &mut wire);
            walk.push(&wire, self.conn.output());
            self.conn.write_queued().await?;
        }
        walk.finish(self.conn.output());
        if whole && let Some(user) = self.user.as_mut() {
            user.maildrop.retrieved(number);
        }
        Ok(Flow::Continue)
    }

    /// The UPDATE state (RFC 1939 6): deleted messages are expunged and retrieved ones
    /// marked `\Seen`, then the session ends. Before login QUIT just ends it.
    async fn quit(&mut self) -> io::Result<Flow> {
        let Some(user) = self.user.take() else {
            self.conn.write(b"+OK Logging out.\r\n").await?;
            return Ok(Flow::Close);
        };
        let seen = user.maildrop.to_mark_seen();
        let expunge = user.maildrop.to_expunge();
        let mut failed = false;
        if !seen.is_empty()
            && let Err(err) = user
                .folder
                .store(&seen, FlagOperation::Add, SystemFlags::SEEN, &[], None)
                .await
        {
            error!(user = %LogSafe(&user.address), cause = %err, "POP3 could not mark messages seen");
        }
        if !expunge.is_empty() {
            let expunged = async {
                user.folder
                    .store(
                        &expunge,
                        FlagOperation::Add,
                        SystemFlags::DELETED,
                        &[],
                        None,
                    )
                    .await?;
                user.folder.expunge(Some(&expunge)).await
            };
            if let Err(err) = expunged.await {
                error!(user = %LogSafe(&user.address), cause = %err, "POP3 could not expunge deleted messages");
                failed = true;
            }
        }
        if failed {
            self.conn
                .write(b"-ERR [SYS/TEMP] Some deleted messages were not removed.\r\n")
                .await?;
        } else if expunge.is_empty() {
            self.conn.write(b"+OK Logging out.\r\n").await?;
        } else {
            self.conn
                .write(b"+OK Logging out, messages deleted.\r\n")
                .await?;
        }
        Ok(Flow::Close)
    }
}
