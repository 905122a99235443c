//! STARTTLS, LOGIN, AUTHENTICATE (PLAIN, LOGIN) and ENABLE.

use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mailstead_auth::sasl::{Exchange, Mechanism, SaslError, Step};
use mailstead_auth::{AuthOutcome, LoginAttempt, Service};
use mailstead_directory::model::MaildirLayout;
use mailstead_net::{Closing, LogSafe};
use mailstead_store::FolderLayout;
use tracing::{error, warn};

use crate::session::{Done, EVICTED, Session, User};

impl Session {
    pub(crate) async fn starttls(&mut self, tag: &str) -> io::Result<Done> {
        if self.conn.tls {
            return Ok(Done::bad("TLS is already active."));
        }
        let Some(tls) = self.ctx.tls.as_ref().map(|tls| tls.get()) else {
            return Ok(Done::bad("TLS support isn't enabled."));
        };
        self.conn
            .write(format!("{tag} OK Begin TLS negotiation now.\r\n").as_bytes())
            .await?;
        // A failed handshake leaves nothing to talk over: the error ends the session.
        self.conn.start_tls(tls).await?;
        Ok(Done::written())
    }

    pub(crate) async fn login(&mut self, user: &str, password: &[u8]) -> io::Result<Done> {
        if !self.login_allowed() {
            return Ok(Done::no(
                "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
            ));
        }
        self.log_in(user, password).await
    }

    pub(crate) async fn authenticate(
        &mut self,
        mechanism: &str,
        initial_response: Option<Vec<u8>>,
    ) -> io::Result<Done> {
        if !self.login_allowed() {
            return Ok(Done::no(
                "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
            ));
        }
        let Some(mechanism) = Mechanism::from_name(mechanism) else {
            return Ok(Done::no("[CANNOT] Unsupported authentication mechanism."));
        };
        let (mut exchange, mut step) = Exchange::start(mechanism, initial_response);
        loop {
            step = match step {
                Step::Challenge(challenge) => match self.sasl_response(challenge).await? {
                    Ok(response) => exchange.respond(response),
                    Err(done) => return Ok(done),
                },
                Step::Credentials { login, password } => {
                    return self.log_in(&login, &password).await;
                }
                Step::Refused(SaslError::MalformedPlain) => {
                    return Ok(Done::bad("Invalid AUTHENTICATE PLAIN response."));
                }
                Step::Refused(SaslError::OtherIdentity) => {
                    return Ok(Done::no("[AUTHORIZATIONFAILED] Authorization failed."));
                }
                Step::Refused(SaslError::InvalidUserName) => {
                    return Ok(Done::bad("Invalid user name."));
                }
            };
        }
    }

    /// Sends a `+` challenge and reads the base64 answer; `Err` is the response to end the
    /// exchange with (cancelled by `*`, invalid base64, connection gone).
    async fn sasl_response(&mut self, challenge: &str) -> io::Result<Result<Vec<u8>, Done>> {
        self.conn
            .write(format!("+ {challenge}\r\n").as_bytes())
            .await?;
        let line = tokio::time::timeout(self.ctx.limits.login_timeout, self.conn.read_line()).await;
        let line = match line {
            Err(_elapsed) => {
                return Ok(Err(Done::bad("Authentication timed out.").then_close()));
            }
            Ok(line) => line?,
        };
        let Some(line) = line else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client left during AUTHENTICATE",
            ));
        };
        let Ok(line) = line else {
            return Ok(Err(Done::bad("Authentication response too long.")));
        };
        if line == b"*" {
            return Ok(Err(Done::bad("Authentication aborted by client.")));
        }
        match BASE64.decode(line.trim_ascii()) {
            Ok(decoded) => Ok(Ok(decoded)),
            Err(_) => Ok(Err(Done::bad(
                "Invalid base64 data in AUTHENTICATE response.",
            ))),
        }
    }

    /// Asks the login service, takes a per-user connection slot and opens the mail.
    async fn log_in(&mut self, login: &str, password: &[u8]) -> io::Result<Done> {
        let attempt = LoginAttempt {
            service: Service::Imap,
            client: self.login_client,
            login,
            password,
        };
        // Shutdown does not wait for a queued verification or a failure's delay: dropping the
        // login gives up its place.
        let outcome = tokio::select! {
            biased;
            closing = self.connection.closing() => {
                let goodbye: &[u8] = match closing {
                    Closing::Shutdown => b"* BYE Server shutting down.\r\n",
                    Closing::Evicted => EVICTED,
                };
                self.conn.write(goodbye).await?;
                return Ok(Done::no("[UNAVAILABLE] Server shutting down.").then_close());
            }
            outcome = self.ctx.auth.log_in(attempt) => outcome,
        };
        let account = match outcome {
            Ok(AuthOutcome::Accepted(account)) => account,
            Ok(AuthOutcome::Refused(refusal)) => {
                // Refusals without verification count too, so a blocked client cannot keep
                // one connection asking.
                self.failed_logins += 1;
                let done = if refusal.is_temporary() {
                    Done::no("[UNAVAILABLE] Too many failed logins, try again later.")
                } else {
                    Done::no("[AUTHENTICATIONFAILED] Authentication failed.")
                };
                if self.failed_logins >= self.ctx.limits.max_failed_logins {
                    self.conn
                        .write(b"* BYE Too many failed logins.\r\n")
                        .await?;
                    return Ok(done.then_close());
                }
                return Ok(done);
            }
            Err(err) => {
                error!(peer = %self.peer, cause = %err, "IMAP authentication failed");
                return Ok(Done::no("[UNAVAILABLE] Temporary authentication failure."));
            }
        };
        let address = account.address.to_string();
        let Some(slot) = self
            .ctx
            .user_sessions
            .take(address.clone(), self.ctx.limits.max_connections_per_user)
        else {
            warn!(peer = %self.peer, user = %LogSafe(&address), "too many IMAP connections for one user");
            return Ok(Done::no(
                "[LIMIT] Maximum number of connections for this user exceeded.",
            ));
        };
        let mail = match open_mail(&self.ctx.mail, &account).await {
            Ok(mail) => mail,
            Err(err) => {
                error!(user = %LogSafe(&address), cause = %err, "cannot open the mailbox's Maildir");
                return Ok(Done::no(
                    "[SERVERBUG] Cannot open your mailbox. Refer to server log.",
                ));
            }
        };
        self.log_login(&address);
        self.user = Some(User::new(account, mail, slot));
        Ok(Done::ok(format!(
            "[CAPABILITY {}] Logged in",
            self.capabilities()
        )))
    }

    pub(crate) async fn enable(&mut self, names: &[String]) -> io::Result<Done> {
        let mut enabled = Vec::new();
        for name in names {
            if name.eq_ignore_ascii_case("CONDSTORE") && !self.condstore {
                self.enable_condstore().await?;
                enabled.push("CONDSTORE");
            } else if name.eq_ignore_ascii_case("QRESYNC") && !self.qresync {
                // QRESYNC implies CONDSTORE (RFC 7162 3.2.3).
                self.qresync = true;
                self.enable_condstore().await?;
                enabled.push("QRESYNC");
            } else if name.eq_ignore_ascii_case("IMAP4REV2") && !self.imap4rev2 {
                self.imap4rev2 = true;
                // No \Recent from here on (RFC 9051).
                if let Some(selected) = self.selected.as_mut() {
                    selected.recent = crate::uids::UidList::default();
                }
                enabled.push("IMAP4rev2");
            } else if name.eq_ignore_ascii_case("UTF8=ACCEPT") && !self.utf8_accept {
                self.utf8_accept = true;
                enabled.push("UTF8=ACCEPT");
            }
        }
        let mut line = String::from("* ENABLED");
        for name in enabled {
            line.push(' ');
            line.push_str(name);
        }
        line.push_str("\r\n");
        self.conn.write(line.as_bytes()).await?;
        Ok(Done::ok("Enabled."))
    }
}

/// Opens the Maildir of a directory account (the logged-in user's, or a shared folder's
/// owner's) with its layout and quota.
pub(crate) async fn open_mail(
    mail: &mailstead_store::MailStore,
    account: &mailstead_directory::account::Account,
) -> Result<mailstead_store::Account, mailstead_store::MailboxError> {
    let layout = match account.location.layout {
        MaildirLayout::Fs => FolderLayout::Fs,
        MaildirLayout::MaildirPlusPlus => FolderLayout::MaildirPlusPlus,
    };
    mail.open_account(
        &account.location.maildir,
        layout,
        mailstead_store::QuotaLimit::bytes(account.quota.bytes),
    )
    .await
}
