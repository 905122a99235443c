//! What every IMAP socket test needs: a server on free loopback ports with a real SQLite
//! directory, real Maildirs and TLS from rcgen, and a line-level client.

// Each test binary uses its own part of the harness.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mailstead_auth::{AuthOptions, Authenticator};
use mailstead_directory::manage::{NewDomain, NewMailbox};
use mailstead_directory::model::Quota;
use mailstead_directory::{Directory, DirectoryOptions};
use mailstead_imap::{ImapContext, Limits, Security, TlsConfig};
use mailstead_store::{MailStore, Store};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct Server {
    pub port: u16,
    pub tls_port: u16,
    pub store: Store,
    pub directory: Directory,
    pub certificate: rustls::pki_types::CertificateDer<'static>,
    pub dir: tempfile::TempDir,
    pub ctx: Arc<ImapContext>,
    pub auth: Authenticator,
    /// Dropping it shuts the listeners down.
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
}

pub fn tls_config() -> (
    Arc<rustls::ServerConfig>,
    rustls::pki_types::CertificateDer<'static>,
) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], private)
    .unwrap();
    (Arc::new(config), cert.der().clone())
}

/// The default penalty with delays in milliseconds, so tests wait little for failures.
pub fn quick_penalty() -> AuthOptions {
    AuthOptions {
        failure_delay: Duration::from_millis(1),
        max_failure_delay: Duration::from_millis(8),
        ..AuthOptions::default()
    }
}

pub async fn start(login_on_loopback: bool) -> Server {
    start_full(login_on_loopback, 1000, |_| {}, quick_penalty()).await
}

/// A server whose registry admits `capacity` connections across both listeners.
pub async fn start_with_capacity(login_on_loopback: bool, capacity: usize) -> Server {
    start_full(login_on_loopback, capacity, |_| {}, quick_penalty()).await
}

/// A server whose limits `adjust` changes from the ones every test uses.
pub async fn start_with(login_on_loopback: bool, adjust: impl FnOnce(&mut Limits)) -> Server {
    start_full(login_on_loopback, 1000, adjust, quick_penalty()).await
}

/// A server whose login penalties are `auth_options`.
pub async fn start_with_auth(login_on_loopback: bool, auth_options: AuthOptions) -> Server {
    start_full(login_on_loopback, 1000, |_| {}, auth_options).await
}

pub async fn start_full(
    login_on_loopback: bool,
    capacity: usize,
    adjust: impl FnOnce(&mut Limits),
    auth_options: AuthOptions,
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("directory.db").display());
    let mail_root = dir.path().join("mail");
    let options = DirectoryOptions::new(url, &mail_root.display().to_string());
    let (directory, _) = Directory::open_and_migrate(options).await.unwrap();
    directory
        .add_domain(
            "test",
            NewDomain {
                domain: "example.com".into(),
                active: true,
                ..NewDomain::default()
            },
        )
        .await
        .unwrap();
    for (name, quota, send_only) in [
        ("alice", None, false),
        ("bob", None, false),
        ("small", Some(2000), false),
        ("sender", None, true),
    ] {
        directory
            .add_mailbox(
                "test",
                NewMailbox {
                    address: format!("{name}@example.com"),
                    password_hash: "{PLAIN}secret".into(),
                    quota: quota.map(|bytes| Quota { bytes: Some(bytes) }),
                    send_only,
                    active: true,
                    ..NewMailbox::default()
                },
            )
            .await
            .unwrap();
    }
    // An account as Dovecot's default `maildir:~/Maildir` left it: Maildir++.
    directory
        .add_mailbox(
            "test",
            NewMailbox {
                address: "dana@example.com".into(),
                password_hash: "{PLAIN}secret".into(),
                active: true,
                maildir: Some(format!(
                    "maildir:{}/example.com/dana/Maildir",
                    mail_root.display()
                )),
                ..NewMailbox::default()
            },
        )
        .await
        .unwrap();
    let store = Store::new("imap.test", dir.path().join("spool")).unwrap();
    let auth = Authenticator::new(directory.clone(), auth_options);
    let (tls, certificate) = tls_config();
    let mut limits = Limits {
        max_line: 4096,
        max_literal: 100_000,
        max_connections_per_user: 4,
        ..Limits::default()
    };
    adjust(&mut limits);
    let ctx = ImapContext::new(
        directory.clone(),
        MailStore::new(&store),
        "imap.test".into(),
        Some(Arc::new(TlsConfig::new(tls))),
        limits,
        login_on_loopback,
    );
    let ctx = Arc::new(ctx.with_authenticator(auth.clone()));
    let connections = mailstead_imap::Connections::new(capacity);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_port = tls_listener.local_addr().unwrap().port();
    let (stop_tls, stopped_tls) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mailstead_imap::serve(
        listener,
        Arc::clone(&ctx),
        Security::StartTls,
        connections.clone(),
        async move {
            let _ = stopped.await;
            let _ = stop_tls.send(());
        },
    ));
    tokio::spawn(mailstead_imap::serve(
        tls_listener,
        Arc::clone(&ctx),
        Security::ImplicitTls,
        connections,
        async move {
            let _ = stopped_tls.await;
        },
    ));
    Server {
        port,
        tls_port,
        store,
        directory,
        certificate,
        dir,
        ctx,
        auth,
        stop: Some(stop),
    }
}

impl Server {
    pub async fn maildir(&self, user: &str) -> PathBuf {
        self.directory
            .mailbox_location(&format!("{user}@example.com"))
            .await
            .unwrap()
            .unwrap()
            .maildir
    }

    pub async fn client(&self) -> Client<TcpStream> {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut client = Client::new(stream);
        let greeting = client.line().await;
        assert!(
            greeting.starts_with("* OK [CAPABILITY IMAP4rev1"),
            "{greeting}"
        );
        client
    }

    /// A client connecting from another loopback address (Linux answers all of 127/8).
    pub async fn client_from(&self, source: [u8; 4]) -> Client<TcpStream> {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(std::net::SocketAddr::from((source, 0)))
            .unwrap();
        let stream = socket
            .connect(std::net::SocketAddr::from(([127, 0, 0, 1], self.port)))
            .await
            .unwrap();
        let mut client = Client::new(stream);
        let greeting = client.line().await;
        assert!(greeting.starts_with("* OK"), "{greeting}");
        client
    }

    pub async fn logged_in(&self, user: &str) -> Client<TcpStream> {
        let mut client = self.client().await;
        let (_, done) = client
            .run(&format!("LOGIN {user}@example.com secret"))
            .await;
        assert!(done.contains("OK [CAPABILITY"), "{done}");
        client
    }

    /// Delivers a message the way SMTP does: spooled once, then into the Maildir.
    pub async fn deliver(&self, user: &str, message: &str) {
        let mut writer = self.store.begin().await.unwrap();
        writer.write_all(message.as_bytes()).await.unwrap();
        let spooled = writer.finish().await.unwrap();
        let quota = self
            .directory
            .quota(&format!("{user}@example.com"))
            .await
            .unwrap()
            .unwrap();
        spooled
            .deliver(
                &self.maildir(user).await,
                mailstead_store::QuotaLimit::bytes(quota.bytes),
                None,
            )
            .await
            .unwrap();
    }

    /// The files in the spool's `tmp/`: messages being received.
    pub fn spool_files(&self) -> Vec<PathBuf> {
        files_in(&self.dir.path().join("spool/tmp"))
    }

    pub fn tls_connector(&self) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.certificate.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

pub struct Client<S> {
    pub stream: BufReader<S>,
    pub next_tag: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client {
            stream: BufReader::new(stream),
            next_tag: 1,
        }
    }

    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(10), self.stream.read_line(&mut line))
            .await
            .expect("server answered within 10 s")
            .unwrap();
        assert!(read > 0, "connection closed");
        line
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
    }

    /// Sends `command` with a fresh tag; returns the untagged lines (literals inline) and the
    /// tagged completion.
    pub async fn run(&mut self, command: &str) -> (Vec<String>, String) {
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        self.until_tagged(&tag).await
    }

    /// Sends `command` with the tag `tag` (the RFCs' examples name theirs).
    pub async fn run_tagged(&mut self, tag: &str, command: &str) -> (Vec<String>, String) {
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        self.until_tagged(tag).await
    }

    pub async fn until_tagged(&mut self, tag: &str) -> (Vec<String>, String) {
        let mut untagged = Vec::new();
        loop {
            let mut line = self.line().await;
            // A literal: read its bytes into the same response.
            while let Some(size) = literal_size(&line) {
                let mut data = vec![0; size];
                self.stream.read_exact(&mut data).await.unwrap();
                line.push_str(&String::from_utf8_lossy(&data));
                line.push_str(&self.line().await);
            }
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return (untagged, rest.trim_end().to_owned());
            }
            untagged.push(line.trim_end().to_owned());
        }
    }
}

/// A server where alice's INBOX holds a message per subject (UIDs 1, 2, ...) and her
/// session with INBOX selected.
pub async fn inbox_with(subjects: &[&str]) -> (Server, Client<TcpStream>) {
    let server = start(true).await;
    for subject in subjects {
        server
            .deliver("alice", &message(subject, &format!("body of {subject}")))
            .await;
    }
    let mut client = server.logged_in("alice").await;
    let (_, done) = client.run("SELECT INBOX").await;
    assert!(done.starts_with("OK [READ-WRITE]"), "{done}");
    (server, client)
}

/// A second session of alice's with INBOX selected.
pub async fn other_session(server: &Server) -> Client<TcpStream> {
    let mut client = server.logged_in("alice").await;
    let (_, done) = client.run("SELECT INBOX").await;
    assert!(done.starts_with("OK"), "{done}");
    client
}

/// The files in a directory (none when it does not exist).
pub fn files_in(dir: &std::path::Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|entry| entry.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

pub fn literal_size(line: &str) -> Option<usize> {
    let line = line.trim_end();
    let open = line.rfind('{')?;
    line.strip_suffix('}')?.get(open + 1..)?.parse().ok()
}

pub fn message(subject: &str, body: &str) -> String {
    format!(
        "From: Carol <carol@example.org>\r\nTo: alice@example.com\r\nSubject: {subject}\r\n\
         Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
}
