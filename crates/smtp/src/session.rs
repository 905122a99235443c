//! The session state machine: greeting, HELO/EHLO/LHLO, the mail transaction, DATA and BDAT,
//! STARTTLS, limits, and delivery through the store.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mailstead_directory::resolve::LocalRecipient;
use mailstead_directory::resolve::{Outcome, Recipient, Rejection};
use mailstead_directory::{Directory, DirectoryError};
use mailstead_net::{Closing, ConnectionHandle, LogSafe};
use mailstead_store::{MessageWriter, StoreError};
use tracing::{info, warn};

use crate::cmd::{self, Command, PathCommand, Reply};
use crate::connection::{Connection, Io, Line};
use crate::data::DataDecoder;
use crate::{Mode, SmtpContext};

/// Who is on the other end.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    /// `None` for a Unix socket.
    pub(crate) ip: Option<IpAddr>,
    pub(crate) description: String,
}

/// Why a session stopped early or a message was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("timeout")]
    Timeout,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

/// The one place errors become replies: temporary → 4xx, permanent → 5xx.
pub(crate) fn reply_for(err: &SessionError) -> Reply {
    match err {
        SessionError::Timeout => Reply::new(421, "4.4.2 Error: timeout exceeded"),
        SessionError::Store(StoreError::OverQuota { .. }) => {
            Reply::new(552, "5.2.2 Error: mailbox is over quota")
        }
        SessionError::Store(StoreError::Io { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) =>
        {
            warn!(cause = %err, "store failure: out of disk space");
            Reply::new(452, "4.3.1 Insufficient system storage")
        }
        SessionError::Store(err) if err.is_temporary() => {
            warn!(cause = %err, "store failure");
            Reply::new(451, "4.3.0 Error: local delivery failed, try again later")
        }
        SessionError::Store(err) => {
            warn!(cause = %err, "store failure");
            Reply::new(451, "4.3.0 Error: local delivery failed, try again later")
        }
        SessionError::Directory(err) => {
            warn!(cause = %err, "directory failure");
            Reply::new(
                451,
                "4.3.0 Error: temporary lookup failure, try again later",
            )
        }
        SessionError::Io(err) => {
            warn!(cause = %err, "i/o failure");
            Reply::new(451, "4.3.0 Error: local error in processing")
        }
    }
}

/// What a client that stopped talking gets before the connection is closed (Postfix's words).
fn timeout_reply(hostname: &str) -> Reply {
    Reply::new(421, format!("4.4.2 {hostname} Error: timeout exceeded"))
}

/// A recipient accepted at RCPT time.
struct Accepted {
    /// As the client wrote it (LMTP replies name it).
    address: String,
    locals: Vec<LocalRecipient>,
}

/// A BDAT transaction in progress.
struct Chunks {
    writer: Option<MessageWriter>,
    /// Why `writer` is gone, when a store failure took it.
    failure: Option<StoreError>,
    size: u64,
    queue_id: String,
}

struct Session {
    ctx: Arc<SmtpContext>,
    peer: Peer,
    helo: Option<String>,
    /// EHLO or LHLO was used: PIPELINING and the extensions are on.
    extended: bool,
    /// The TLS protocol and cipher once STARTTLS is done.
    tls: Option<String>,
    mail_from: Option<String>,
    recipients: Vec<Accepted>,
    chunks: Option<Chunks>,
    errors: u32,
    /// Tarpit delay owed before the queued error replies are sent.
    delay: std::time::Duration,
}

/// What to do after a command.
enum Next {
    Continue,
    Close,
}

pub(crate) async fn run(
    stream: Box<dyn Io>,
    peer: Peer,
    ctx: Arc<SmtpContext>,
    mut connection: ConnectionHandle,
) {
    let mut conn = Connection::new(stream, ctx.limits.max_line);
    let mut session = Session {
        ctx: Arc::clone(&ctx),
        peer,
        helo: None,
        extended: false,
        tls: None,
        mail_from: None,
        recipients: Vec::new(),
        chunks: None,
        errors: 0,
        delay: std::time::Duration::ZERO,
    };
    // Postfix's smtpd_forbid_unauth_pipelining: a client talking before the banner is not a
    // mail server waiting for it.
    if conn.input_ready_now().await {
        conn.queue(&Reply::new(554, "5.5.0 Error: SMTP protocol synchronization").to_wire());
        conn.shutdown().await;
        return;
    }
    let banner = match ctx.mode {
        Mode::Smtp => format!("{} ESMTP Mailstead", ctx.hostname),
        Mode::Lmtp => format!("{} LMTP Mailstead", ctx.hostname),
    };
    conn.queue(&Reply::new(220, banner).to_wire());

    loop {
        let line = tokio::select! {
            biased;
            closing = connection.closing() => {
                let reply = match closing {
                    Closing::Shutdown => Reply::new(421, format!("4.3.2 {} Service shutting down", ctx.hostname)),
                    Closing::Evicted => evicted_reply(&ctx.hostname),
                };
                conn.queue(&reply.to_wire());
                break;
            }
            line = tokio::time::timeout(ctx.limits.command_timeout, conn.read_line()) => line,
        };
        let line = match line {
            Ok(Ok(Line::Text(line))) => line,
            Ok(Ok(Line::Eof)) => break,
            Ok(Ok(Line::TooLong)) => {
                let reply = Reply::new(500, "5.5.2 Error: line too long");
                let next = session.send(&mut conn, reply);
                let delay = std::mem::take(&mut session.delay);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if let Next::Close = next {
                    break;
                }
                continue;
            }
            Ok(Err(err)) => {
                info!(peer = %session.peer.description, cause = %err, "connection lost");
                break;
            }
            Err(_elapsed) => {
                conn.queue(&timeout_reply(&ctx.hostname).to_wire());
                info!(peer = %session.peer.description, "timeout waiting for a command");
                break;
            }
        };
        // Pipelining is only for clients that said EHLO/LHLO (RFC 2920); anything else
        // sending ahead is refused like Postfix's smtpd_forbid_unauth_pipelining.
        if !session.extended && conn.has_buffered_input() {
            conn.queue(&Reply::new(554, "5.5.0 Error: SMTP protocol synchronization").to_wire());
            break;
        }
        let next = session.command(&mut conn, &line).await;
        // A session in a mail transaction is busy, not idle: the accept loop does not evict it.
        connection.set_pre_login(session.mail_from.is_none() && session.chunks.is_none());
        // The error tarpit: replies are still queued, so sleeping here delays them.
        let delay = std::mem::take(&mut session.delay);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match next {
            Ok(Next::Continue) => {}
            Ok(Next::Close) => break,
            Err(err) => {
                match err {
                    SessionError::Io(_) => {}
                    SessionError::Timeout => conn.queue(&timeout_reply(&ctx.hostname).to_wire()),
                    _ => conn.queue(&reply_for(&err).to_wire()),
                }
                info!(peer = %session.peer.description, cause = %err, "session ended");
                break;
            }
        }
    }
    conn.shutdown().await;
}

/// What an idle connection closed to make room for a new one is told; the accept loop's
/// refusal of a full server says the same.
pub(crate) fn evicted_reply(hostname: &str) -> Reply {
    Reply::new(
        421,
        format!("4.7.0 {hostname} Error: too many connections; try again later"),
    )
}

/// Whether `address` is `local@domain` with a fully-qualified domain (one with a dot, not at
/// either end) or an address literal.
fn fully_qualified(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && ((domain.starts_with('[') && domain.ends_with(']'))
                    || (domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')))
        }
        None => false,
    }
}

static QUEUE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A short id naming one received message in replies, headers and logs.
fn new_queue_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let counter = QUEUE_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:X}{:05X}{:04X}",
        now.as_secs(),
        now.subsec_micros(),
        counter & 0xFFFF
    )
}

impl Session {
    /// Queues a reply, counting errors: past `soft_error_limit` each error reply owes the
    /// tarpit delay (Postfix's `smtpd_error_sleep_time`); at `max_errors` the session closes.
    fn send(&mut self, conn: &mut Connection, reply: Reply) -> Next {
        conn.queue(&reply.to_wire());
        if reply.is_error() {
            if self.errors >= self.ctx.limits.soft_error_limit {
                self.delay += self.ctx.limits.error_sleep;
            }
            self.errors += 1;
            if self.errors >= self.ctx.limits.max_errors {
                conn.queue(
                    &Reply::new(
                        421,
                        format!("4.7.0 {} Error: too many errors", self.ctx.hostname),
                    )
                    .to_wire(),
                );
                return Next::Close;
            }
        }
        Next::Continue
    }

    /// The reply for a failed local delivery: `reply_for`, except that over quota is
    /// temporary when `quota_full_tempfail` says so (Dovecot's setting of that name).
    fn delivery_reply(&self, err: StoreError) -> Reply {
        match err {
            StoreError::OverQuota { .. } if self.ctx.limits.quota_full_tempfail => {
                Reply::new(452, "4.2.2 Mailbox full")
            }
            err => reply_for(&SessionError::Store(err)),
        }
    }

    fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.recipients.clear();
        self.chunks = None;
    }

    async fn command(&mut self, conn: &mut Connection, line: &[u8]) -> Result<Next, SessionError> {
        let command = match cmd::parse(line) {
            Ok(command) => command,
            Err(reply) => return Ok(self.send(conn, reply)),
        };
        let lmtp = self.ctx.mode == Mode::Lmtp;
        let reply = match command {
            Command::Ehlo(_) | Command::Helo(_) if lmtp => {
                Reply::new(500, "5.5.1 Error: this is LMTP, use LHLO")
            }
            Command::Lhlo(_) if !lmtp => Reply::new(500, "5.5.2 Error: command not recognized"),
            Command::Ehlo(name) | Command::Lhlo(name) => {
                self.reset_transaction();
                self.helo = Some(name);
                self.extended = true;
                self.ehlo_reply()
            }
            Command::Helo(name) => {
                self.reset_transaction();
                self.helo = Some(name);
                self.extended = false;
                Reply::new(250, self.ctx.hostname.clone())
            }
            Command::Mail(path) => self.mail(path),
            Command::Rcpt(path) => self.rcpt(path).await,
            Command::Data => return self.data(conn).await,
            Command::Bdat { size, last } => return self.bdat(conn, size, last).await,
            Command::Rset => {
                self.reset_transaction();
                Reply::new(250, "2.0.0 Ok")
            }
            Command::Noop => Reply::new(250, "2.0.0 Ok"),
            Command::Quit => {
                conn.queue(&Reply::new(221, "2.0.0 Bye").to_wire());
                return Ok(Next::Close);
            }
            Command::Vrfy => Reply::new(502, "5.5.1 VRFY command is disabled"),
            Command::NotImplemented => Reply::new(502, "5.5.1 Error: command not implemented"),
            Command::StartTls => return self.start_tls(conn).await,
        };
        Ok(self.send(conn, reply))
    }

    fn ehlo_reply(&self) -> Reply {
        let mut lines = vec![
            self.ctx.hostname.clone(),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.ctx.limits.max_message_size),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
        ];
        if self.ctx.tls.is_some() && self.tls.is_none() && self.ctx.mode == Mode::Smtp {
            lines.push("STARTTLS".to_string());
        }
        lines.push("CHUNKING".to_string());
        Reply { code: 250, lines }
    }

    fn mail(&mut self, path: PathCommand) -> Reply {
        if self.helo.is_none() {
            return Reply::new(503, "5.5.1 Error: send HELO/EHLO first");
        }
        if self.mail_from.is_some() {
            return Reply::new(503, "5.5.1 Error: nested MAIL command");
        }
        for (key, value) in &path.params {
            match (key.as_str(), value.as_deref()) {
                ("SIZE", Some(size)) => match size.parse::<u64>() {
                    Ok(size) if size > self.ctx.limits.max_message_size => {
                        return Reply::new(552, "5.3.4 Message size exceeds fixed limit");
                    }
                    Ok(_) => {}
                    Err(_) => return Reply::new(501, "5.5.4 Bad SIZE parameter"),
                },
                ("BODY", Some(body))
                    if body.eq_ignore_ascii_case("7BIT")
                        || body.eq_ignore_ascii_case("8BITMIME") => {}
                ("SMTPUTF8", None) => {}
                _ => return Reply::new(555, format!("5.5.4 Unsupported option: {key}")),
            }
        }
        if !path.address.is_empty() && self.ctx.limits.reject_non_fqdn_sender {
            // Postfix's reject_non_fqdn_sender.
            if !fully_qualified(&path.address) {
                return Reply::new(
                    504,
                    format!(
                        "5.5.2 <{}>: Sender address rejected: need fully-qualified address",
                        path.address
                    ),
                );
            }
        }
        self.mail_from = Some(path.address);
        Reply::new(250, "2.1.0 Ok")
    }

    async fn rcpt(&mut self, path: PathCommand) -> Reply {
        if self.mail_from.is_none() {
            return Reply::new(503, "5.5.1 Error: need MAIL command");
        }
        if let Some((key, _)) = path.params.first() {
            return Reply::new(555, format!("5.5.4 Unsupported option: {key}"));
        }
        if self.recipients.len() >= self.ctx.limits.max_recipients {
            return Reply::new(452, "4.5.3 Error: too many recipients");
        }
        // Postfix's reject_non_fqdn_recipient; RFC 5321 requires a bare <postmaster> to work.
        if self.ctx.limits.reject_non_fqdn_recipient
            && !path.address.eq_ignore_ascii_case("postmaster")
            && !fully_qualified(&path.address)
        {
            return Reply::new(
                504,
                format!(
                    "5.5.2 <{}>: Recipient address rejected: need fully-qualified address",
                    path.address
                ),
            );
        }
        let address = match Directory::parse_address(&path.address) {
            Ok(address) => address,
            Err(_) => {
                return Reply::new(
                    501,
                    format!("5.1.3 <{}>: Bad recipient address syntax", path.address),
                );
            }
        };
        let resolution = match self.ctx.directory.resolve_address(&address).await {
            Ok(resolution) => resolution,
            Err(err) => return reply_for(&SessionError::Directory(err)),
        };
        let shown = &path.address;
        match &resolution.outcome {
            Outcome::Reject(rejection) => match rejection {
                Rejection::NotHosted => {
                    Reply::new(554, format!("5.7.1 <{shown}>: Relay access denied"))
                }
                Rejection::UnknownUser
                | Rejection::MailboxInactive
                | Rejection::AliasInactive
                | Rejection::NoDeliverableRecipients => Reply::new(
                    550,
                    format!("5.1.1 <{shown}>: Recipient address rejected: User unknown"),
                ),
                Rejection::SendOnly => Reply::new(
                    554,
                    format!("5.7.1 <{shown}>: Recipient address rejected: Access denied"),
                ),
                Rejection::DomainInactive => Reply::new(
                    550,
                    format!("5.1.2 <{shown}>: Recipient address rejected: Domain not found"),
                ),
                Rejection::ExpansionLimit => Reply::new(
                    451,
                    format!("4.3.0 <{shown}>: Temporary lookup failure: alias expansion limit"),
                ),
            },
            Outcome::Deliver(recipients) => {
                let mut locals = Vec::new();
                for recipient in recipients {
                    match recipient {
                        Recipient::Local(local) => locals.push(local.clone()),
                        // Never accept what cannot be delivered yet: no outbound queue.
                        Recipient::External { .. } => {
                            return Reply::new(
                                451,
                                format!("4.3.0 <{shown}>: remote recipients not accepted yet"),
                            );
                        }
                    }
                }
                self.recipients.push(Accepted {
                    address: path.address.clone(),
                    locals,
                });
                Reply::new(250, "2.1.5 Ok")
            }
        }
    }

    /// A reply refusing DATA/BDAT before any body is read, or `None` when the transaction can
    /// take a body.
    fn body_precondition(&self) -> Option<Reply> {
        if self.mail_from.is_none() {
            return Some(Reply::new(503, "5.5.1 Error: need MAIL command"));
        }
        if self.recipients.is_empty() {
            return Some(Reply::new(554, "5.5.1 Error: no valid recipients"));
        }
        None
    }

    /// The Return-Path: and Received: headers, written before the body.
    fn trace_headers(&self, queue_id: &str, chunking: bool) -> String {
        let sender = self.mail_from.as_deref().unwrap_or("");
        let helo = self.helo.as_deref().unwrap_or("unknown");
        let ip = match self.peer.ip {
            Some(ip) => format!("[{ip}]"),
            None => "local".to_string(),
        };
        let protocol = match (self.ctx.mode, self.tls.is_some()) {
            (Mode::Lmtp, _) => "LMTP",
            (Mode::Smtp, true) => "ESMTPS",
            (Mode::Smtp, false) if self.extended || chunking => "ESMTP",
            (Mode::Smtp, false) => "SMTP",
        };
        let tls = match &self.tls {
            Some(tls) => format!("\r\n\t({tls})"),
            None => String::new(),
        };
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let helo: String = helo.chars().filter(|c| !c.is_control()).collect();
        format!(
            "Return-Path: <{sender}>\r\nReceived: from {helo} ({ip}){tls}\r\n\tby {} (Mailstead) with {protocol} id {queue_id};\r\n\t{date}\r\n",
            self.ctx.hostname
        )
    }

    async fn data(&mut self, conn: &mut Connection) -> Result<Next, SessionError> {
        if self.chunks.is_some() {
            return Ok(self.send(
                conn,
                Reply::new(503, "5.5.1 Error: DATA during BDAT transaction"),
            ));
        }
        if let Some(reply) = self.body_precondition() {
            return Ok(self.send(conn, reply));
        }
        let queue_id = new_queue_id();
        let mut writer = match self.ctx.store.begin().await {
            Ok(writer) => Some(writer),
            Err(err) => return Ok(self.send(conn, reply_for(&SessionError::Store(err)))),
        };
        let mut failure: Option<SessionError> = None;
        let headers = self.trace_headers(&queue_id, false);
        if let Some(open) = writer.as_mut()
            && let Err(err) = open.write_all(headers.as_bytes()).await
        {
            failure = Some(err.into());
            writer = None;
        }
        conn.queue(&Reply::new(354, "End data with <CR><LF>.<CR><LF>").to_wire());
        let mut decoder = DataDecoder::new();
        let mut size: u64 = 0;
        let mut oversize = false;
        let mut decoded = Vec::with_capacity(8192);
        loop {
            if !conn.has_buffered_input() {
                match tokio::time::timeout(self.ctx.limits.data_timeout, conn.fill()).await {
                    Err(_elapsed) => return Err(SessionError::Timeout),
                    // The spool file goes with the writer.
                    Ok(Ok(0)) => return Ok(Next::Close),
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return Err(err.into()),
                }
            }
            decoded.clear();
            let (consumed, ended) = decoder.feed(conn.buffered(), &mut decoded);
            conn.consume(consumed);
            size = size.saturating_add(decoded.len() as u64);
            if size > self.ctx.limits.max_message_size {
                oversize = true;
                writer = None;
            }
            if decoder.bare_line_ending {
                writer = None;
            }
            if let Some(open) = writer.as_mut()
                && let Err(err) = open.write_all(&decoded).await
            {
                failure = Some(err.into());
                writer = None;
            }
            if ended {
                break;
            }
        }
        if decoder.bare_line_ending {
            self.reset_transaction();
            return Ok(self.send(conn, Reply::new(550, "5.5.2 Error: bare <LF> received")));
        }
        if oversize {
            self.reset_transaction();
            return Ok(self.send(conn, Reply::new(552, "5.3.4 Error: message file too big")));
        }
        self.finish_message(conn, writer, failure, &queue_id).await
    }

    async fn bdat(
        &mut self,
        conn: &mut Connection,
        size: u64,
        last: bool,
    ) -> Result<Next, SessionError> {
        let refusal = match &self.chunks {
            Some(_) => None,
            None => self.body_precondition(),
        };
        if self.chunks.is_none() && refusal.is_none() {
            let queue_id = new_queue_id();
            let headers = self.trace_headers(&queue_id, true);
            let (writer, failure) = match self.ctx.store.begin().await {
                Ok(mut writer) => match writer.write_all(headers.as_bytes()).await {
                    Ok(()) => (Some(writer), None),
                    Err(err) => {
                        warn!(cause = %err, "store failure");
                        (None, Some(err))
                    }
                },
                Err(err) => {
                    warn!(cause = %err, "store failure");
                    (None, Some(err))
                }
            };
            self.chunks = Some(Chunks {
                writer,
                failure,
                size: 0,
                queue_id,
            });
        }
        // The chunk is read whatever happens: its bytes are not commands.
        let mut remaining = size;
        let mut oversize = false;
        while remaining > 0 {
            if !conn.has_buffered_input() {
                match tokio::time::timeout(self.ctx.limits.data_timeout, conn.fill()).await {
                    Err(_elapsed) => return Err(SessionError::Timeout),
                    Ok(Ok(0)) => return Ok(Next::Close),
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return Err(err.into()),
                }
            }
            let available = conn
                .buffered()
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            if let (None, Some(chunks)) = (&refusal, self.chunks.as_mut()) {
                chunks.size = chunks.size.saturating_add(available as u64);
                if chunks.size > self.ctx.limits.max_message_size {
                    oversize = true;
                    chunks.writer = None;
                }
                if let Some(writer) = chunks.writer.as_mut()
                    && let Err(err) = writer.write_all(&conn.buffered()[..available]).await
                {
                    warn!(cause = %err, "store failure");
                    chunks.writer = None;
                    chunks.failure = Some(err);
                }
            }
            conn.consume(available);
            remaining -= available as u64;
        }
        if let Some(reply) = refusal {
            return Ok(self.send(conn, reply));
        }
        if oversize {
            self.reset_transaction();
            return Ok(self.send(conn, Reply::new(552, "5.3.4 Error: message file too big")));
        }
        if !last {
            return Ok(self.send(
                conn,
                Reply::new(250, format!("2.0.0 Ok: {size} bytes received")),
            ));
        }
        let Some(chunks) = self.chunks.take() else {
            return Ok(self.send(conn, Reply::new(503, "5.5.1 Error: no BDAT transaction")));
        };
        let failure = match (&chunks.writer, chunks.failure) {
            (Some(_), _) => None,
            (None, Some(err)) => Some(SessionError::Store(err)),
            (None, None) => Some(SessionError::Io(std::io::Error::other(
                "spool write failed",
            ))),
        };
        self.finish_message(conn, chunks.writer, failure, &chunks.queue_id)
            .await
    }

    /// Spools the message and delivers it to every local mailbox, then replies: one reply
    /// (SMTP) or one per accepted recipient (LMTP), only after every delivery returned.
    async fn finish_message(
        &mut self,
        conn: &mut Connection,
        writer: Option<MessageWriter>,
        failure: Option<SessionError>,
        queue_id: &str,
    ) -> Result<Next, SessionError> {
        let recipients = std::mem::take(&mut self.recipients);
        let sender = self.mail_from.take().unwrap_or_default();
        self.chunks = None;
        let spooled = match (writer, failure) {
            (Some(writer), None) => writer.finish().await.map_err(SessionError::Store),
            (_, Some(err)) => Err(err),
            (None, None) => Err(SessionError::Io(std::io::Error::other(
                "spool write failed",
            ))),
        };
        let spooled = match spooled {
            Ok(spooled) => spooled,
            Err(err) => {
                let reply = reply_for(&err);
                let mut next = Next::Continue;
                let count = if self.ctx.mode == Mode::Lmtp {
                    recipients.len()
                } else {
                    1
                };
                for _ in 0..count {
                    next = self.send(conn, reply.clone());
                }
                return Ok(next);
            }
        };
        // Each mailbox gets the message once, however many recipients lead to it.
        let mut outcomes: HashMap<PathBuf, Result<(), Reply>> = HashMap::new();
        for recipient in &recipients {
            for local in &recipient.locals {
                let maildir = local.location.maildir.clone();
                if outcomes.contains_key(&maildir) {
                    continue;
                }
                // Delivered-To: names the final mailbox, as Postfix's virtual and Dovecot's
                // LMTP add it; the spool file is shared, so it goes only into this copy.
                let address: String = local
                    .address
                    .to_string()
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect();
                let prefix = format!("Delivered-To: {address}\r\n");
                let outcome = match spooled
                    .deliver(&maildir, local.quota, Some(prefix.as_bytes()))
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(err) => {
                        warn!(queue_id, mailbox = %local.address, cause = %err, "delivery failed");
                        Err(self.delivery_reply(err))
                    }
                };
                outcomes.insert(maildir, outcome);
            }
        }
        drop(spooled);
        let per_recipient: Vec<Result<(), Reply>> = recipients
            .iter()
            .map(|recipient| {
                let mut worst: Result<(), Reply> = Ok(());
                for local in &recipient.locals {
                    if let Some(Err(reply)) = outcomes.get(&local.location.maildir) {
                        // A temporary failure outranks a permanent one: retrying may work.
                        match &worst {
                            Err(current) if current.code < 500 => {}
                            _ => worst = Err(reply.clone()),
                        }
                    }
                }
                worst
            })
            .collect();
        info!(
            queue_id,
            from = %LogSafe(&sender),
            peer = %self.peer.description,
            recipients = recipients.len(),
            delivered = per_recipient.iter().filter(|outcome| outcome.is_ok()).count(),
            "message received"
        );
        match self.ctx.mode {
            Mode::Lmtp => {
                let mut next = Next::Continue;
                for (recipient, outcome) in recipients.iter().zip(per_recipient) {
                    let reply = match outcome {
                        Ok(()) => Reply::new(
                            250,
                            format!("2.0.0 <{}> {queue_id} Saved", recipient.address),
                        ),
                        Err(reply) => Reply {
                            code: reply.code,
                            lines: vec![format!(
                                "{} <{}>",
                                reply.lines.join(" "),
                                recipient.address
                            )],
                        },
                    };
                    next = self.send(conn, reply);
                }
                Ok(next)
            }
            Mode::Smtp if outcomes.values().any(Result::is_ok) => {
                // One reply covers every recipient: once any mailbox has the message, a
                // failure reply would make the client retry (duplicates) or bounce wrongly.
                // The failed mailboxes should get a bounce, which needs the outbound queue
                // (not there yet); until then they are logged.
                for recipient in &recipients {
                    for local in &recipient.locals {
                        if let Some(Err(reply)) = outcomes.get(&local.location.maildir) {
                            warn!(
                                queue_id,
                                recipient = %LogSafe(&recipient.address.to_string()),
                                mailbox = %LogSafe(&local.address.to_string()),
                                reason = %LogSafe(&reply.lines.join(" ")),
                                code = reply.code,
                                "message accepted but not delivered to this mailbox"
                            );
                        }
                    }
                }
                Ok(self.send(
                    conn,
                    Reply::new(250, format!("2.0.0 Ok: queued as {queue_id}")),
                ))
            }
            Mode::Smtp => {
                let temporary = per_recipient
                    .iter()
                    .find(|outcome| matches!(outcome, Err(reply) if reply.code < 500));
                let permanent = per_recipient.iter().find(|outcome| outcome.is_err());
                let reply = match (temporary, permanent) {
                    (Some(Err(reply)), _) | (None, Some(Err(reply))) => reply.clone(),
                    _ => Reply::new(250, format!("2.0.0 Ok: queued as {queue_id}")),
                };
                Ok(self.send(conn, reply))
            }
        }
    }

    async fn start_tls(&mut self, conn: &mut Connection) -> Result<Next, SessionError> {
        let config = match (&self.ctx.tls, &self.tls, self.ctx.mode) {
            (_, Some(_), _) => {
                return Ok(self.send(conn, Reply::new(554, "5.5.1 Error: TLS already active")));
            }
            (Some(config), None, Mode::Smtp) => config.get(),
            _ => return Ok(self.send(conn, Reply::new(454, "4.7.0 TLS not available"))),
        };
        if conn.has_buffered_input() {
            // Commands sent with STARTTLS would be taken as protected by TLS (CVE-2011-0411).
            conn.queue(
                &Reply::new(
                    554,
                    "5.5.1 Error: improper command pipelining after STARTTLS",
                )
                .to_wire(),
            );
            return Ok(Next::Close);
        }
        conn.queue(&Reply::new(220, "2.0.0 Ready to start TLS").to_wire());
        let upgraded =
            tokio::time::timeout(self.ctx.limits.command_timeout, conn.start_tls(config)).await;
        match upgraded {
            Ok(Ok(description)) => {
                // RFC 3207 §4.2: forget everything learned before TLS.
                self.reset_transaction();
                self.helo = None;
                self.extended = false;
                self.tls = Some(description);
                Ok(Next::Continue)
            }
            Ok(Err(err)) => {
                info!(peer = %self.peer.description, cause = %err, "TLS handshake failed");
                Ok(Next::Close)
            }
            Err(_elapsed) => Ok(Next::Close),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_io(kind: std::io::ErrorKind) -> SessionError {
        SessionError::Store(StoreError::Io {
            path: PathBuf::from("/spool/tmp/x"),
            source: std::io::Error::from(kind),
        })
    }

    #[test]
    fn out_of_space_is_452_4_3_1_and_other_io_is_451() {
        for kind in [
            std::io::ErrorKind::StorageFull,
            std::io::ErrorKind::QuotaExceeded,
        ] {
            let reply = reply_for(&store_io(kind));
            assert_eq!(reply.code, 452);
            assert_eq!(reply.lines, ["4.3.1 Insufficient system storage"]);
        }
        let reply = reply_for(&store_io(std::io::ErrorKind::PermissionDenied));
        assert_eq!(reply.code, 451);
        assert_eq!(timeout_reply("mx.example").code, 421);
    }
}
