//! One ManageSieve session: the non-authenticated and authenticated states of RFC 5804,
//! command dispatch, login and the script commands.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mailstead_auth::sasl::{Exchange, Mechanism, SaslError, Step};
use mailstead_auth::{AuthOutcome, LoginAttempt, Service};
use mailstead_net::{Closing, ConnectionHandle, LogSafe, Slot};
use mailstead_store::{ScriptError, ScriptStore, ScriptUsage, check_script_name};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::ManageSieveContext;
use crate::command::Command;
use crate::connection::{Connection, Frame, FramingLimits, Io, MAX_DISCARD};
use crate::parser::{ParseError, parse_command, parse_sasl_response};
use crate::response::{Code, Status, response, write_literal, write_string};

/// What an idle connection before login closed to make room for a new one is told.
pub(crate) fn evicted() -> Vec<u8> {
    response(
        Status::Bye,
        Some(&Code::TryLater),
        "Server full, try again later.",
    )
}

fn shutting_down() -> Vec<u8> {
    response(Status::Bye, Some(&Code::TryLater), "Server shutting down.")
}

/// What to do after a command.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// A logged-in user: the authenticated state.
struct User {
    address: String,
    scripts: ScriptStore,
    /// Counts this session against the user's connection limit until dropped.
    _slot: Slot<String>,
}

pub(crate) struct Session {
    ctx: Arc<ManageSieveContext>,
    conn: Connection,
    peer: IpAddr,
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
    ctx: Arc<ManageSieveContext>,
    connection: ConnectionHandle,
) {
    let login_deadline = Instant::now() + ctx.limits.login_timeout;
    let mut session = Session {
        ctx,
        conn: Connection::new(stream, tls),
        peer,
        user: None,
        failed_logins: 0,
        bad_commands: 0,
        connection,
        login_deadline,
    };
    if let Err(err) = session.serve().await {
        debug!(peer = %session.peer, cause = %err, "ManageSieve connection ended");
    }
    session.conn.shutdown().await;
}

/// Whether a script of `size` bytes named `name` fits (RFC 5804 2.3): `existing` is the size
/// of the script it would replace.
fn check_space(
    limits: &crate::Limits,
    usage: ScriptUsage,
    existing: Option<u64>,
    size: u64,
) -> Result<(), (Code, String)> {
    if size > limits.max_script_size {
        return Err((
            Code::QuotaMaxSize,
            format!(
                "Script is too large (max {} bytes).",
                limits.max_script_size
            ),
        ));
    }
    if existing.is_none() && usage.scripts >= limits.max_scripts {
        return Err((
            Code::QuotaMaxScripts,
            format!("Too many scripts (max {}).", limits.max_scripts),
        ));
    }
    let total = usage
        .bytes
        .saturating_sub(existing.unwrap_or(0))
        .saturating_add(size);
    if total > limits.max_storage {
        return Err((
            Code::QuotaMaxStorage,
            format!(
                "Not enough room for the script (max {} bytes in all).",
                limits.max_storage
            ),
        ));
    }
    Ok(())
}

impl Session {
    async fn serve(&mut self) -> io::Result<()> {
        self.write_capabilities();
        self.conn
            .write(&response(Status::Ok, None, "Mailstead ManageSieve ready."));
        loop {
            let flow = if self.user.is_some() {
                let timeout = self.ctx.limits.idle_timeout;
                match tokio::time::timeout(timeout, self.step()).await {
                    Ok(flow) => flow?,
                    Err(_elapsed) => {
                        self.conn.write(&response(
                            Status::Bye,
                            None,
                            "Disconnected for inactivity.",
                        ));
                        return Ok(());
                    }
                }
            } else {
                // The whole unauthenticated life is bounded, not each wait.
                match tokio::time::timeout_at(self.login_deadline, self.step()).await {
                    Ok(flow) => flow?,
                    Err(_elapsed) => {
                        self.conn.write(&response(
                            Status::Bye,
                            None,
                            "Disconnected for inactivity during authentication.",
                        ));
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

    /// What the framer accepts in the current state.
    fn framing_limits(&self) -> FramingLimits {
        let limits = &self.ctx.limits;
        if self.user.is_some() {
            FramingLimits {
                max_line: limits.max_line,
                max_literal: limits.max_script_size,
                max_command: usize::try_from(limits.max_script_size)
                    .unwrap_or(usize::MAX)
                    .saturating_add(limits.max_line.saturating_mul(2)),
                max_discard: MAX_DISCARD,
            }
        } else {
            let max = limits.max_input_before_login.min(limits.max_line);
            FramingLimits {
                max_line: max,
                max_literal: max as u64,
                max_command: max.saturating_mul(2),
                max_discard: 0,
            }
        }
    }

    /// Reads the next command (or a client's SASL answer), unless the server asks the session
    /// to close first; `None` when the session is to end (the goodbye is queued).
    async fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        let limits = self.framing_limits();
        let frame = tokio::select! {
            biased;
            closing = self.connection.closing() => {
                let goodbye = match closing {
                    Closing::Shutdown => shutting_down(),
                    Closing::Evicted => evicted(),
                };
                self.conn.write(&goodbye);
                return Ok(None);
            }
            frame = self.conn.read_command(limits) => frame?,
        };
        match frame {
            None => Ok(None),
            Some(Frame::TooBig) => {
                self.conn.write(&response(
                    Status::Bye,
                    Some(&Code::QuotaMaxSize),
                    "Line or literal too long.",
                ));
                Ok(None)
            }
            Some(frame) => Ok(Some(frame)),
        }
    }

    /// Reads one command and answers it.
    async fn step(&mut self) -> io::Result<Flow> {
        let Some(frame) = self.read_frame().await? else {
            return Ok(Flow::Close);
        };
        let flow = match frame {
            Frame::Command(bytes) => match parse_command(&bytes) {
                Ok(command) => self.dispatch(command).await?,
                Err(ParseError::Unknown) => self.refuse("Unknown command.")?,
                Err(ParseError::Syntax(why)) => self.refuse(&format!("{why}."))?,
            },
            Frame::LiteralTooBig => {
                let text = format!(
                    "Literal too large (max {} bytes).",
                    self.ctx.limits.max_script_size
                );
                self.reply(Status::No, Some(Code::QuotaMaxSize), &text)
            }
            // Ended in `read_frame`.
            Frame::TooBig => Flow::Close,
        };
        self.conn.flush().await?;
        Ok(flow)
    }

    fn reply(&mut self, status: Status, code: Option<Code>, text: &str) -> Flow {
        self.conn.write(&response(status, code.as_ref(), text));
        Flow::Continue
    }

    /// A `NO` for a command that should not have been sent; too many end the session.
    fn refuse(&mut self, text: &str) -> io::Result<Flow> {
        self.bad_commands += 1;
        if self.bad_commands >= self.ctx.limits.max_bad_commands {
            self.conn.write(&response(
                Status::Bye,
                None,
                &format!("{text} Too many bad commands."),
            ));
            return Ok(Flow::Close);
        }
        Ok(self.reply(Status::No, None, text))
    }

    async fn dispatch(&mut self, command: Command) -> io::Result<Flow> {
        if self.user.is_none() && !command.allowed_before_login() {
            return self.refuse("Authenticate first.");
        }
        match command {
            Command::Capability => {
                self.write_capabilities();
                Ok(self.reply(Status::Ok, None, "Capability completed."))
            }
            Command::StartTls => self.start_tls().await,
            Command::Authenticate {
                mechanism,
                initial_response,
            } => self.authenticate(&mechanism, initial_response).await,
            Command::Unauthenticate => {
                // Only reached logged in (not allowed before login).
                if let Some(user) = self.user.take() {
                    info!(peer = %self.peer, user = %LogSafe(&user.address), "ManageSieve logout (UNAUTHENTICATE)");
                }
                Ok(self.reply(Status::Ok, None, "Unauthenticated."))
            }
            Command::Logout => {
                self.reply(Status::Ok, None, "Logout completed.");
                Ok(Flow::Close)
            }
            Command::Noop(tag) => Ok(self.reply(Status::Ok, tag.map(Code::Tag), "Done.")),
            Command::HaveSpace { name, size } => self.have_space(name, size).await,
            Command::PutScript { name, script } => self.put_script(name, script).await,
            Command::CheckScript { script } => {
                let flow = match self.compile(script).await {
                    Ok(_) => self.reply(Status::Ok, None, "Script is valid."),
                    Err((code, text)) => self.reply(Status::No, code, &text),
                };
                Ok(flow)
            }
            Command::ListScripts => self.list_scripts().await,
            Command::SetActive(name) => self.set_active(name).await,
            Command::GetScript(name) => self.get_script(name).await,
            Command::DeleteScript(name) => {
                let result = self
                    .with_scripts(move |scripts| scripts.delete(&name))
                    .await;
                Ok(self.storage_reply(result, "Deleted."))
            }
            Command::RenameScript { old, new } => {
                let result = self
                    .with_scripts(move |scripts| {
                        check_script_name(&new)?;
                        scripts.rename(&old, &new)
                    })
                    .await;
                Ok(self.storage_reply(result, "Renamed."))
            }
        }
    }

    fn write_capabilities(&mut self) {
        let mut out = Vec::new();
        let mut capability = |name: &str, value: Option<&str>| {
            write_string(&mut out, name.as_bytes());
            if let Some(value) = value {
                out.push(b' ');
                write_string(&mut out, value.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        };
        capability("IMPLEMENTATION", Some("Mailstead"));
        capability("SIEVE", Some(&mailstead_sieve::extensions().join(" ")));
        let sasl = if self.login_allowed() && self.user.is_none() {
            "PLAIN LOGIN"
        } else {
            ""
        };
        capability("SASL", Some(sasl));
        if !self.conn.tls && self.ctx.tls.is_some() && self.user.is_none() {
            capability("STARTTLS", None);
        }
        let max_redirects = mailstead_sieve::Limits::default().max_redirects.to_string();
        capability("MAXREDIRECTS", Some(&max_redirects));
        capability("UNAUTHENTICATE", None);
        if let Some(user) = &self.user {
            capability("OWNER", Some(&user.address));
        }
        capability("VERSION", Some("1.0"));
        self.conn.write(&out);
    }

    /// Passwords only over TLS, or on loopback when configured (as IMAP decides).
    fn login_allowed(&self) -> bool {
        self.conn.tls || (self.ctx.login_on_loopback_without_tls && self.peer.is_loopback())
    }

    async fn start_tls(&mut self) -> io::Result<Flow> {
        if self.conn.tls {
            return self.refuse("TLS is already active.");
        }
        if self.user.is_some() {
            return self.refuse("STARTTLS is not allowed after login.");
        }
        let Some(tls) = self.ctx.tls.as_ref().map(|tls| tls.get()) else {
            return self.refuse("TLS support isn't enabled.");
        };
        self.reply(Status::Ok, None, "Begin TLS negotiation now.");
        // A failed handshake leaves nothing to talk over: the error ends the session.
        self.conn.start_tls(tls).await?;
        // RFC 5804 2.2: the capabilities again, as they are over TLS.
        self.write_capabilities();
        Ok(self.reply(Status::Ok, None, "TLS negotiation successful."))
    }

    async fn authenticate(
        &mut self,
        mechanism: &str,
        initial_response: Option<Vec<u8>>,
    ) -> io::Result<Flow> {
        if self.user.is_some() {
            return self.refuse("Already authenticated.");
        }
        if !self.login_allowed() {
            return Ok(self.reply(
                Status::No,
                Some(Code::EncryptNeeded),
                "Plaintext authentication disallowed on non-secure connections; use STARTTLS.",
            ));
        }
        let Some(mechanism) = Mechanism::from_name(mechanism) else {
            return self.refuse("Unsupported authentication mechanism.");
        };
        let initial = match initial_response {
            None => None,
            Some(encoded) => match BASE64.decode(encoded.trim_ascii()) {
                Ok(decoded) => Some(decoded),
                Err(_) => return self.refuse("Invalid base64 data in initial response."),
            },
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
                    return self.refuse("Invalid PLAIN response.");
                }
                Step::Refused(SaslError::OtherIdentity) => {
                    return Ok(self.reply(Status::No, None, "Authorization failed."));
                }
                Step::Refused(SaslError::InvalidUserName) => {
                    return self.refuse("Invalid user name.");
                }
            };
        }
    }

    /// Sends a challenge (a string) and reads the client's answer (a string of base64);
    /// `Err` is how the exchange ended instead (cancelled by `"*"`, bad syntax or base64, the
    /// connection closing).
    async fn sasl_response(&mut self, challenge: &str) -> io::Result<Result<Vec<u8>, Flow>> {
        let mut out = Vec::new();
        write_string(&mut out, challenge.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.conn.write(&out);
        let Some(frame) = self.read_frame().await? else {
            return Ok(Err(Flow::Close));
        };
        let answer = match frame {
            Frame::Command(bytes) => parse_sasl_response(&bytes),
            Frame::LiteralTooBig | Frame::TooBig => return Ok(Err(Flow::Close)),
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(_) => return Ok(Err(self.refuse("Invalid SASL response.")?)),
        };
        if answer == b"*" {
            return Ok(Err(self.reply(
                Status::No,
                None,
                "Authentication aborted by client.",
            )));
        }
        match BASE64.decode(answer.trim_ascii()) {
            Ok(decoded) => Ok(Ok(decoded)),
            Err(_) => Ok(Err(self.refuse("Invalid base64 data in response.")?)),
        }
    }

    /// Asks the login service and takes a per-user connection slot.
    async fn log_in(&mut self, login: &str, password: &[u8]) -> io::Result<Flow> {
        let attempt = LoginAttempt {
            service: Service::ManageSieve,
            client: self.peer,
            login,
            password,
        };
        // Shutdown does not wait for a queued verification or a failure's delay.
        let outcome = tokio::select! {
            biased;
            closing = self.connection.closing() => {
                let goodbye = match closing {
                    Closing::Shutdown => shutting_down(),
                    Closing::Evicted => evicted(),
                };
                self.conn.write(&goodbye);
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
                if self.failed_logins >= self.ctx.limits.max_failed_logins {
                    self.conn
                        .write(&response(Status::Bye, None, "Too many failed logins."));
                    return Ok(Flow::Close);
                }
                return Ok(if refusal.is_temporary() {
                    self.reply(
                        Status::No,
                        Some(Code::TryLater),
                        "Too many failed logins, try again later.",
                    )
                } else {
                    self.reply(Status::No, None, "Authentication failed.")
                });
            }
            Err(err) => {
                error!(peer = %self.peer, cause = %err, "ManageSieve authentication failed");
                return Ok(self.reply(
                    Status::No,
                    Some(Code::TryLater),
                    "Temporary authentication failure.",
                ));
            }
        };
        let address = account.address.to_string();
        let Some(slot) = self
            .ctx
            .user_sessions
            .take(address.clone(), self.ctx.limits.max_connections_per_user)
        else {
            warn!(peer = %self.peer, user = %LogSafe(&address), "too many ManageSieve connections for one user");
            return Ok(self.reply(
                Status::No,
                Some(Code::TryLater),
                "Maximum number of connections for this user exceeded.",
            ));
        };
        info!(peer = %self.peer, user = %LogSafe(&address), tls = self.conn.tls, "ManageSieve login");
        let scripts = ScriptStore::new(&account.location.home)
            .with_max_script_bytes(self.ctx.limits.max_script_size);
        self.user = Some(User {
            address,
            scripts,
            _slot: slot,
        });
        Ok(self.reply(Status::Ok, None, "Logged in."))
    }

    /// Runs `work` on the user's scripts on the blocking pool (it reads, writes and fsyncs).
    async fn with_scripts<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&ScriptStore) -> Result<T, ScriptError> + Send + 'static,
    ) -> Result<T, ScriptError> {
        let Some(user) = self.user.as_ref() else {
            return Err(ScriptError::Io {
                path: Default::default(),
                source: io::Error::other("not logged in"),
            });
        };
        let scripts = user.scripts.clone();
        match tokio::task::spawn_blocking(move || work(&scripts)).await {
            Ok(result) => result,
            Err(err) => Err(ScriptError::Io {
                path: Default::default(),
                source: io::Error::other(err.to_string()),
            }),
        }
    }

    /// `OK` with `done`, or the `NO` a storage error calls for.
    fn storage_reply<T>(&mut self, result: Result<T, ScriptError>, done: &str) -> Flow {
        match result {
            Ok(_) => self.reply(Status::Ok, None, done),
            Err(err) => {
                let (code, text) = self.storage_refusal(&err);
                self.reply(Status::No, code, &text)
            }
        }
    }

    fn storage_refusal(&self, err: &ScriptError) -> (Option<Code>, String) {
        match err {
            ScriptError::InvalidName(why) => (None, format!("Invalid script name: {why}.")),
            ScriptError::NotFound(_) => {
                (Some(Code::NonExistent), "There is no such script.".into())
            }
            ScriptError::AlreadyExists(_) => (
                Some(Code::AlreadyExists),
                "A script with that name already exists.".into(),
            ),
            ScriptError::Active(_) => (
                Some(Code::Active),
                "You may not delete the active script.".into(),
            ),
            ScriptError::TooLarge { limit, .. } => (
                Some(Code::QuotaMaxSize),
                format!("Script is too large (max {limit} bytes)."),
            ),
            ScriptError::NotText { .. } => (None, "Script is not UTF-8 text.".into()),
            ScriptError::ActiveLinkUnusable { .. } | ScriptError::Io { .. } => {
                let user = self.user.as_ref().map_or("", |user| user.address.as_str());
                error!(peer = %self.peer, user = %LogSafe(user), cause = %err, "ManageSieve storage failure");
                (
                    Some(Code::TryLater),
                    "Cannot reach your scripts now, try again later.".into(),
                )
            }
        }
    }

    /// Checks a script: size, UTF-8 and the Sieve compiler. The `Err` is the `NO` to send.
    async fn compile(&mut self, script: Vec<u8>) -> Result<String, (Option<Code>, String)> {
        let max = self.ctx.limits.max_script_size;
        if script.len() as u64 > max {
            return Err((
                Some(Code::QuotaMaxSize),
                format!("Script is too large (max {max} bytes)."),
            ));
        }
        let Ok(source) = String::from_utf8(script) else {
            return Err((None, "Script is not UTF-8 text.".into()));
        };
        let limits = mailstead_sieve::Limits {
            max_script_bytes: usize::try_from(max).unwrap_or(usize::MAX),
            ..mailstead_sieve::Limits::default()
        };
        // Compiling a large script takes a while: off the reactor.
        let compiled = tokio::task::spawn_blocking(move || {
            mailstead_sieve::compile(&source, &limits)
                .map(|_| source)
                .map_err(|err| err.to_string())
        })
        .await;
        match compiled {
            Ok(Ok(source)) => Ok(source),
            Ok(Err(message)) => Err((None, message)),
            Err(err) => {
                error!(cause = %err, "the Sieve compiler failed");
                Err((Some(Code::TryLater), "Cannot check the script now.".into()))
            }
        }
    }

    async fn have_space(&mut self, name: String, size: u64) -> io::Result<Flow> {
        let limits = self.ctx.limits.clone();
        let result = self
            .with_scripts(move |scripts| {
                check_script_name(&name)?;
                Ok(check_space(
                    &limits,
                    scripts.usage()?,
                    scripts.size(&name)?,
                    size,
                ))
            })
            .await;
        Ok(match result {
            Ok(Ok(())) => self.reply(Status::Ok, None, "Putscript would succeed."),
            Ok(Err((code, text))) => self.reply(Status::No, Some(code), &text),
            Err(err) => self.storage_reply::<()>(Err(err), ""),
        })
    }

    async fn put_script(&mut self, name: String, script: Vec<u8>) -> io::Result<Flow> {
        if let Err(err) = check_script_name(&name) {
            return Ok(self.storage_reply::<()>(Err(err), ""));
        }
        let source = match self.compile(script).await {
            Ok(source) => source,
            Err((code, text)) => return Ok(self.reply(Status::No, code, &text)),
        };
        let limits = self.ctx.limits.clone();
        let result = self
            .with_scripts(move |scripts| {
                let size = source.len() as u64;
                if let Err(refusal) =
                    check_space(&limits, scripts.usage()?, scripts.size(&name)?, size)
                {
                    return Ok(Err(refusal));
                }
                scripts.put(&name, source.as_bytes()).map(Ok)
            })
            .await;
        Ok(match result {
            Ok(Ok(())) => self.reply(Status::Ok, None, "Script stored."),
            Ok(Err((code, text))) => self.reply(Status::No, Some(code), &text),
            Err(err) => self.storage_reply::<()>(Err(err), ""),
        })
    }

    async fn list_scripts(&mut self) -> io::Result<Flow> {
        let result = self.with_scripts(|scripts| scripts.list()).await;
        let scripts = match result {
            Ok(scripts) => scripts,
            Err(err) => return Ok(self.storage_reply::<()>(Err(err), "")),
        };
        let mut out = Vec::new();
        for script in scripts {
            write_string(&mut out, script.name.as_bytes());
            if script.active {
                out.extend_from_slice(b" ACTIVE");
            }
            out.extend_from_slice(b"\r\n");
        }
        self.conn.write(&out);
        Ok(self.reply(Status::Ok, None, "Listscripts completed."))
    }

    async fn set_active(&mut self, name: String) -> io::Result<Flow> {
        if name.is_empty() {
            let result = self.with_scripts(|scripts| scripts.set_active(None)).await;
            return Ok(self.storage_reply(result, "Deactivated."));
        }
        // Only a script delivery can run becomes active.
        let lookup = name.clone();
        let source = match self.with_scripts(move |scripts| scripts.get(&lookup)).await {
            Ok(source) => source,
            Err(err) => return Ok(self.storage_reply::<()>(Err(err), "")),
        };
        if let Err((code, text)) = self.compile(source).await {
            return Ok(self.reply(Status::No, code, &text));
        }
        let result = self
            .with_scripts(move |scripts| scripts.set_active(Some(&name)))
            .await;
        Ok(self.storage_reply(result, "Activated."))
    }

    async fn get_script(&mut self, name: String) -> io::Result<Flow> {
        let result = self.with_scripts(move |scripts| scripts.get(&name)).await;
        let source = match result {
            Ok(source) => source,
            Err(err) => return Ok(self.storage_reply::<()>(Err(err), "")),
        };
        let mut out = Vec::with_capacity(source.len() + 16);
        write_literal(&mut out, &source);
        out.extend_from_slice(b"\r\n");
        self.conn.write(&out);
        Ok(self.reply(Status::Ok, None, "Getscript completed."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_is_checked_against_size_count_and_storage() {
        let limits = crate::Limits {
            max_script_size: 100,
            max_scripts: 2,
            max_storage: 150,
            ..crate::Limits::default()
        };
        let usage = ScriptUsage {
            scripts: 2,
            bytes: 120,
        };
        let code = |result: Result<(), (Code, String)>| result.err().map(|(code, _)| code);
        assert_eq!(
            code(check_space(&limits, usage, Some(60), 101)),
            Some(Code::QuotaMaxSize)
        );
        assert_eq!(
            code(check_space(&limits, usage, None, 1)),
            Some(Code::QuotaMaxScripts)
        );
        // Replacing a script frees its size first.
        assert_eq!(code(check_space(&limits, usage, Some(60), 90)), None);
        assert_eq!(
            code(check_space(&limits, usage, Some(60), 91)),
            Some(Code::QuotaMaxStorage)
        );
        assert_eq!(
            code(check_space(&limits, ScriptUsage::default(), None, 100)),
            None
        );
    }
}
