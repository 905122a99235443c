//! One SMTP or LMTP connection: greeting, EHLO/LHLO, STARTTLS as the plan demands, AUTH at the
//! relay, and transactions with a result per recipient.
//!
//! mail-send's `SmtpClient` writes the commands and parses the replies; its `mail_from`,
//! `rcpt_to` and `data` are not used because they turn a refusal into an error without the
//! recipient it belongs to and take no DSN parameters, so the commands are written here and
//! sent with its `cmd`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use mail_send::SmtpClient;
use rustls::pki_types::ServerName;
use smtp_proto::{
    AUTH_LOGIN, AUTH_PLAIN, EXT_8BIT_MIME, EXT_DSN, EXT_SIZE, EXT_SMTP_UTF8, EXT_START_TLS,
    EhloResponse, Response,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::tls::{self, Plan, PolicyVerifier};
use super::{Attempt, AttemptResult, Credentials, DeliveryRequest, Notify, OutboundRecipient};

/// The socket under the SMTP client: plaintext until STARTTLS, then TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open session, past EHLO (and STARTTLS and AUTH when they were needed).
pub(crate) struct Connection {
    client: SmtpClient<Stream>,
    capabilities: EhloResponse<String>,
    /// `mx.example.net[192.0.2.1]:25`, for `Attempt::remote` and diagnostics.
    pub(crate) remote: String,
    lmtp: bool,
}

/// Whom to connect to and how.
pub(crate) struct Target<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) host_name: &'a str,
    pub(crate) lmtp: bool,
    pub(crate) plan: &'a Plan,
    /// Set for the relay host only.
    pub(crate) auth: Option<&'a Credentials>,
    pub(crate) ehlo_name: &'a str,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    /// For opportunistic TLS.
    pub(crate) any_certificate: &'a Arc<PolicyVerifier>,
}

enum OpenError {
    /// Opportunistic TLS failed; Postfix tries the same host again without it.
    OpportunisticTls,
    Failed(Attempt),
}

/// # Errors
/// The attempt for every recipient when this host cannot take mail now (the caller tries the
/// next host).
pub(crate) async fn open(target: &Target<'_>) -> Result<Connection, Attempt> {
    let remote = format!(
        "{}[{}]:{}",
        target.host_name,
        target.addr.ip(),
        target.addr.port()
    );
    match open_once(target, &remote, true).await {
        Ok(connection) => Ok(connection),
        Err(OpenError::Failed(attempt)) => Err(attempt),
        Err(OpenError::OpportunisticTls) => match open_once(target, &remote, false).await {
            Ok(connection) => Ok(connection),
            Err(OpenError::Failed(attempt)) => Err(attempt),
            Err(OpenError::OpportunisticTls) => Err(ours(
                AttemptResult::Deferred,
                "4.7.5",
                format!("TLS with {remote} failed"),
                &remote,
            )),
        },
    }
}

async fn open_once(
    target: &Target<'_>,
    remote: &str,
    try_tls: bool,
) -> Result<Connection, OpenError> {
    let failed =
        |result, status: &str, why: String| OpenError::Failed(ours(result, status, why, remote));
    let tcp =
        match tokio::time::timeout(target.connect_timeout, TcpStream::connect(target.addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(err)) => {
                return Err(failed(
                    AttemptResult::Deferred,
                    "4.4.1",
                    format!("connect to {remote}: {err}"),
                ));
            }
            Err(_) => {
                return Err(failed(
                    AttemptResult::Deferred,
                    "4.4.1",
                    format!("connect to {remote}: timed out"),
                ));
            }
        };
    let mut client = SmtpClient {
        stream: Stream::Plain(tcp),
        timeout: target.command_timeout,
    };
    let greeting = tokio::time::timeout(target.command_timeout, client.read()).await;
    match greeting {
        Ok(Ok(reply)) if reply.code / 100 == 2 => {}
        Ok(Ok(reply)) => return Err(OpenError::Failed(reply_attempt(&reply, remote))),
        Ok(Err(err)) => return Err(lost(remote, "the greeting", &err)),
        Err(_) => return Err(timed_out(remote, "the greeting")),
    }
    let mut capabilities = hello(&mut client, target, remote).await?;
    let mut tls_active = false;
    let verifier = match target.plan {
        Plan::Plain => None,
        Plan::Opportunistic if !try_tls || !capabilities.has_capability(EXT_START_TLS) => None,
        Plan::Opportunistic => Some(target.any_certificate.clone()),
        Plan::Required { policy, .. } if !capabilities.has_capability(EXT_START_TLS) => {
            return Err(failed(
                AttemptResult::Deferred,
                "4.7.5",
                format!("TLS is required by policy \"{policy}\", but was not offered by {remote}"),
            ));
        }
        Plan::Required { verifier, .. } => Some(verifier.clone()),
    };
    if let Some(verifier) = verifier {
        match starttls(client, target, verifier).await {
            Ok(upgraded) => client = upgraded,
            Err(_) if matches!(target.plan, Plan::Opportunistic) => {
                return Err(OpenError::OpportunisticTls);
            }
            Err(why) => {
                let policy = match target.plan {
                    Plan::Required { policy, .. } => *policy,
                    _ => "may",
                };
                return Err(failed(
                    AttemptResult::Deferred,
                    "4.7.5",
                    format!("TLS policy \"{policy}\" not met by {remote}: {why}"),
                ));
            }
        }
        tls_active = true;
        capabilities = hello(&mut client, target, remote).await?;
    }
    if let Some(credentials) = target.auth {
        authenticate(&mut client, &capabilities, credentials, tls_active, remote).await?;
    }
    Ok(Connection {
        client,
        capabilities,
        remote: remote.to_owned(),
        lmtp: target.lmtp,
    })
}

async fn hello(
    client: &mut SmtpClient<Stream>,
    target: &Target<'_>,
    remote: &str,
) -> Result<EhloResponse<String>, OpenError> {
    let answer = if target.lmtp {
        client.lhlo(target.ehlo_name).await
    } else {
        client.ehlo(target.ehlo_name).await
    };
    match answer {
        Ok(capabilities) => Ok(capabilities),
        Err(mail_send::Error::UnexpectedReply(reply)) => {
            Err(OpenError::Failed(reply_attempt(&reply, remote)))
        }
        Err(mail_send::Error::Timeout) => Err(timed_out(remote, "EHLO")),
        Err(err) => Err(lost(remote, "EHLO", &err)),
    }
}

/// # Errors
/// Why TLS could not be started (the reply, or the handshake's error, which names the
/// certificate problem the policy's verifier found).
async fn starttls(
    mut client: SmtpClient<Stream>,
    target: &Target<'_>,
    verifier: Arc<PolicyVerifier>,
) -> Result<SmtpClient<Stream>, String> {
    let reply = client
        .cmd(b"STARTTLS\r\n")
        .await
        .map_err(|err| format!("STARTTLS: {err}"))?;
    if reply.code != 220 {
        return Err(format!("STARTTLS refused: {}", reply_text(&reply)));
    }
    // mail-send reads each reply into a buffer of its own and drops whatever followed it, so
    // no plaintext sent before the handshake survives into the TLS session.
    let SmtpClient { stream, timeout } = client;
    let Stream::Plain(tcp) = stream else {
        return Err("TLS is already active".to_owned());
    };
    let config = tls::client_config(verifier)?;
    let server_name = match target.host_name.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(target.host_name.to_owned())
            .unwrap_or_else(|_| ServerName::IpAddress(target.addr.ip().into())),
    };
    let connector = TlsConnector::from(Arc::new(config));
    let handshake = tokio::time::timeout(timeout, connector.connect(server_name, tcp)).await;
    match handshake {
        Ok(Ok(tls)) => Ok(SmtpClient {
            stream: Stream::Tls(Box::new(tls)),
            timeout,
        }),
        Ok(Err(err)) => Err(handshake_error(&err)),
        Err(_) => Err("TLS handshake timed out".to_owned()),
    }
}

fn handshake_error(err: &std::io::Error) -> String {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::General(why)) => why.clone(),
        Some(other) => format!("TLS handshake failed: {other}"),
        None => format!("TLS handshake failed: {err}"),
    }
}

async fn authenticate(
    client: &mut SmtpClient<Stream>,
    capabilities: &EhloResponse<String>,
    credentials: &Credentials,
    tls_active: bool,
    remote: &str,
) -> Result<(), OpenError> {
    // PLAIN and LOGIN only (the password itself goes over the wire), and only those: the
    // others mail-send would try need features it is built without.
    let mut offered = capabilities.clone();
    offered.auth_mechanisms &= AUTH_PLAIN | AUTH_LOGIN;
    if offered.auth_mechanisms == 0 {
        // Like Postfix: a relay that does not ask for AUTH gets the mail without it.
        return Ok(());
    }
    if !tls_active {
        return Err(OpenError::Failed(ours(
            AttemptResult::Deferred,
            "4.7.0",
            format!("not sending the relay password to {remote} without TLS"),
            remote,
        )));
    }
    let login = mail_send::Credentials::Plain {
        username: credentials.login.as_str(),
        secret: credentials.password.as_str(),
    };
    match client.authenticate(&login, &offered).await {
        Ok(_) => Ok(()),
        Err(mail_send::Error::AuthenticationFailed(reply))
        | Err(mail_send::Error::UnexpectedReply(reply)) => Err(OpenError::Failed(Attempt {
            result: AttemptResult::Deferred,
            status: "4.7.0".to_owned(),
            diagnostic: format!("smtp; {} (SASL authentication failed)", reply_text(&reply)),
            remote: Some(remote.to_owned()),
        })),
        Err(err) => Err(lost(remote, "AUTH", &err)),
    }
}

/// How a transaction on a connection ended.
pub(crate) enum Sent {
    /// Every recipient has its attempt; `reusable` when the session is still in a known state.
    Done {
        attempts: Vec<Attempt>,
        reusable: bool,
    },
    /// A connection from the pool was gone before MAIL was answered: try a fresh one.
    Stale,
}

impl Connection {
    /// # Errors
    /// None: every failure is a recipient's [`Attempt`].
    pub(crate) async fn send(&mut self, request: &DeliveryRequest<'_>, reused: bool) -> Sent {
        let n_recipients = request.recipients.len();
        let remote = self.remote.clone();
        let all = |attempt: Attempt, reusable| Sent::Done {
            attempts: vec![attempt; n_recipients],
            reusable,
        };
        let needs_utf8 = !request.sender.is_ascii()
            || request
                .recipients
                .iter()
                .any(|recipient| !recipient.address.is_ascii());
        if needs_utf8 && !self.capabilities.has_capability(EXT_SMTP_UTF8) {
            return all(
                ours(
                    AttemptResult::Failed,
                    "5.6.7",
                    format!("SMTPUTF8 is required, but was not offered by {remote}"),
                    &remote,
                ),
                true,
            );
        }
        let mail = self.mail_command(request, needs_utf8);
        let reply = match self.client.cmd(mail.as_bytes()).await {
            Ok(reply) => reply,
            Err(_) if reused => return Sent::Stale,
            Err(err) => return all(lost_attempt(&remote, "MAIL FROM", &err), false),
        };
        if reply.code / 100 != 2 {
            return all(reply_attempt(&reply, &remote), true);
        }

        let mut attempts: Vec<Option<Attempt>> = vec![None; n_recipients];
        let mut accepted = Vec::new();
        for (index, recipient) in request.recipients.iter().enumerate() {
            let command = self.rcpt_command(recipient);
            match self.client.cmd(command.as_bytes()).await {
                Ok(reply) if reply.code / 100 == 2 => accepted.push(index),
                Ok(reply) => attempts[index] = Some(reply_attempt(&reply, &remote)),
                Err(err) => {
                    return finish(attempts, lost_attempt(&remote, "RCPT TO", &err), false);
                }
            }
        }
        if accepted.is_empty() {
            let fallback = ours(AttemptResult::Deferred, "4.0.0", String::new(), &remote);
            return finish(attempts, fallback, true);
        }

        let reply = match self.client.cmd(b"DATA\r\n").await {
            Ok(reply) => reply,
            Err(err) => return finish(attempts, lost_attempt(&remote, "DATA", &err), false),
        };
        if reply.code != 354 {
            return finish(attempts, reply_attempt(&reply, &remote), true);
        }
        let n_replies = if self.lmtp { accepted.len() } else { 1 };
        let transfer_time = self.client.timeout.saturating_mul(
            u32::try_from(1 + request.message.len() / (1 << 20)).unwrap_or(u32::MAX),
        );
        let outcome = tokio::time::timeout(transfer_time, async {
            // mail-send ends the data with CRLF "." CRLF whatever the message ends with; a
            // message's own last CRLF is that first CRLF, or the message gains an empty line.
            let body = request
                .message
                .strip_suffix(b"\r\n")
                .unwrap_or(request.message);
            self.client.write_message(body).await?;
            // LMTP answers once per accepted recipient after the data (RFC 2033 §4.2);
            // read_many parses them off the one stream in order.
            self.client.read_many(n_replies).await
        })
        .await;
        let replies = match outcome {
            Ok(Ok(replies)) => replies,
            Ok(Err(err)) => {
                return finish(
                    attempts,
                    lost_attempt(&remote, "the message body", &err),
                    false,
                );
            }
            Err(_) => {
                let attempt = ours(
                    AttemptResult::Deferred,
                    "4.4.2",
                    format!("conversation with {remote} timed out while sending the message body"),
                    &remote,
                );
                return finish(attempts, attempt, false);
            }
        };
        for (position, index) in accepted.iter().enumerate() {
            let reply = replies.get(position).or(replies.first());
            if let Some(reply) = reply {
                attempts[*index] = Some(reply_attempt(reply, &remote));
            }
        }
        let fallback = ours(AttemptResult::Deferred, "4.4.2", String::new(), &remote);
        finish(attempts, fallback, true)
    }

    fn mail_command(&self, request: &DeliveryRequest<'_>, needs_utf8: bool) -> String {
        let mut command = format!("MAIL FROM:<{}>", request.sender);
        if self.capabilities.has_capability(EXT_SIZE) {
            command.push_str(&format!(" SIZE={}", request.message.len()));
        }
        if !request.message.is_ascii() && self.capabilities.has_capability(EXT_8BIT_MIME) {
            command.push_str(" BODY=8BITMIME");
        }
        if needs_utf8 {
            command.push_str(" SMTPUTF8");
        }
        if self.capabilities.has_capability(EXT_DSN) {
            match request.ret_full {
                Some(true) => command.push_str(" RET=FULL"),
                Some(false) => command.push_str(" RET=HDRS"),
                None => {}
            }
            if let Some(envid) = request.envid {
                command.push_str(&format!(" ENVID={}", xtext(envid)));
            }
        }
        command.push_str("\r\n");
        command
    }

    fn rcpt_command(&self, recipient: &OutboundRecipient) -> String {
        let mut command = format!("RCPT TO:<{}>", recipient.address);
        if self.capabilities.has_capability(EXT_DSN) {
            if let Some(notify) = recipient.notify.and_then(notify_value) {
                command.push_str(&format!(" NOTIFY={notify}"));
            }
            if let Some(orcpt) = &recipient.orcpt {
                let (kind, address) = orcpt.split_once(';').unwrap_or(("rfc822", orcpt));
                command.push_str(&format!(" ORCPT={};{}", kind.trim(), xtext(address.trim())));
            }
        }
        command.push_str("\r\n");
        command
    }

    /// RSET, so the next transaction starts clean; false when the session is unusable.
    pub(crate) async fn reset(&mut self) -> bool {
        matches!(self.client.cmd(b"RSET\r\n").await, Ok(reply) if reply.code / 100 == 2)
    }

    pub(crate) async fn quit(self) {
        // The mail is delivered or not already; a server that does not answer QUIT changes
        // nothing.
        let _ = self.client.quit().await;
    }
}

fn notify_value(notify: Notify) -> Option<String> {
    if notify.never {
        return Some("NEVER".to_owned());
    }
    let words: Vec<&str> = [
        (notify.success, "SUCCESS"),
        (notify.failure, "FAILURE"),
        (notify.delay, "DELAY"),
    ]
    .into_iter()
    .filter_map(|(on, word)| on.then_some(word))
    .collect();
    (!words.is_empty()).then(|| words.join(","))
}

/// RFC 3461 §4: `+`, `=`, controls, space and non-ASCII as `+XX`.
fn xtext(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (33..=126).contains(&byte) && byte != b'+' && byte != b'=' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("+{byte:02X}"));
        }
    }
    encoded
}

/// Every recipient without an attempt yet gets `rest`.
fn finish(attempts: Vec<Option<Attempt>>, rest: Attempt, reusable: bool) -> Sent {
    Sent::Done {
        attempts: attempts
            .into_iter()
            .map(|attempt| attempt.unwrap_or_else(|| rest.clone()))
            .collect(),
        reusable,
    }
}

/// A server's reply as an attempt: its class decides, its enhanced code is the status (or
/// `X.0.0` when it gave none), the reply itself is the diagnostic.
pub(crate) fn reply_attempt(reply: &Response<String>, remote: &str) -> Attempt {
    let class = reply.code / 100;
    let result = match class {
        2 => AttemptResult::Delivered,
        5 => AttemptResult::Failed,
        _ => AttemptResult::Deferred,
    };
    let status = if u16::from(reply.esc[0]) == class {
        format!("{}.{}.{}", reply.esc[0], reply.esc[1], reply.esc[2])
    } else {
        format!("{}.0.0", class.clamp(2, 5))
    };
    Attempt {
        result,
        status,
        diagnostic: format!("smtp; {}", reply_text(reply)),
        remote: Some(remote.to_owned()),
    }
}

/// `550 5.1.1 <u@x> user unknown`, continuation lines joined with spaces.
fn reply_text(reply: &Response<String>) -> String {
    let message = reply
        .message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if reply.esc[0] == 0 {
        format!("{} {message}", reply.code)
    } else {
        format!(
            "{} {}.{}.{} {message}",
            reply.code, reply.esc[0], reply.esc[1], reply.esc[2]
        )
    }
}

fn ours(result: AttemptResult, status: &str, why: String, remote: &str) -> Attempt {
    Attempt {
        result,
        status: status.to_owned(),
        diagnostic: format!("x-mailstead; {why}"),
        remote: Some(remote.to_owned()),
    }
}

fn lost_attempt(remote: &str, stage: &str, err: &mail_send::Error) -> Attempt {
    let why = match err {
        mail_send::Error::Timeout => {
            format!("conversation with {remote} timed out while sending {stage}")
        }
        err => format!("lost connection with {remote} while sending {stage}: {err}"),
    };
    ours(AttemptResult::Deferred, "4.4.2", why, remote)
}

fn lost(remote: &str, stage: &str, err: &mail_send::Error) -> OpenError {
    OpenError::Failed(lost_attempt(remote, stage, err))
}

fn timed_out(remote: &str, stage: &str) -> OpenError {
    OpenError::Failed(ours(
        AttemptResult::Deferred,
        "4.4.2",
        format!("conversation with {remote} timed out while receiving {stage}"),
        remote,
    ))
}
