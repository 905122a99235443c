//! What every POP3 socket test needs: a server on free loopback ports with a real SQLite
//! directory, real Maildirs and TLS from rcgen, and a line-level client.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mailstead_auth::{AuthOptions, Authenticator};
use mailstead_directory::manage::{NewDomain, NewMailbox};
use mailstead_directory::{Directory, DirectoryOptions};
use mailstead_pop3::{Limits, Pop3Context, Security, TlsConfig};
use mailstead_store::{MailStore, Store};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct Server {
    pub port: u16,
    pub tls_port: u16,
    pub store: Store,
    pub mail: MailStore,
    pub directory: Directory,
    pub certificate: rustls::pki_types::CertificateDer<'static>,
    pub dir: tempfile::TempDir,
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

pub async fn start(login_on_loopback: bool) -> Server {
    start_with(login_on_loopback, |_| {}).await
}

pub async fn start_with(login_on_loopback: bool, adjust: impl FnOnce(&mut Limits)) -> Server {
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
    for name in ["alice", "bob"] {
        directory
            .add_mailbox(
                "test",
                NewMailbox {
                    address: format!("{name}@example.com"),
                    password_hash: "{PLAIN}secret".into(),
                    active: true,
                    ..NewMailbox::default()
                },
            )
            .await
            .unwrap();
    }
    let store = Store::new("pop3.test", dir.path().join("spool")).unwrap();
    let auth = Authenticator::new(
        directory.clone(),
        AuthOptions {
            failure_delay: Duration::from_millis(1),
            max_failure_delay: Duration::from_millis(8),
            ..AuthOptions::default()
        },
    );
    let (tls, certificate) = tls_config();
    let mut limits = Limits {
        max_connections_per_user: 2,
        ..Limits::default()
    };
    adjust(&mut limits);
    let mail = MailStore::new(&store);
    let ctx = Pop3Context::new(
        directory.clone(),
        mail.clone(),
        Some(Arc::new(TlsConfig::new(tls))),
        limits,
        login_on_loopback,
    );
    let ctx = Arc::new(ctx.with_authenticator(auth));
    let connections = mailstead_pop3::Connections::new(100);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_port = tls_listener.local_addr().unwrap().port();
    let (stop_tls, stopped_tls) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mailstead_pop3::serve(
        listener,
        Arc::clone(&ctx),
        Security::StartTls,
        connections.clone(),
        async move {
            let _ = stopped.await;
            let _ = stop_tls.send(());
        },
    ));
    tokio::spawn(mailstead_pop3::serve(
        tls_listener,
        ctx,
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
        mail,
        directory,
        certificate,
        dir,
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
        assert_eq!(greeting, "+OK Mailstead ready.\r\n");
        client
    }

    pub async fn logged_in(&self, user: &str) -> Client<TcpStream> {
        let mut client = self.client().await;
        assert_eq!(
            client.command(&format!("USER {user}@example.com")).await,
            "+OK"
        );
        assert_eq!(client.command("PASS secret").await, "+OK Logged in.");
        client
    }

    /// Delivers a message the way SMTP does: spooled once, then into the Maildir.
    pub async fn deliver(&self, user: &str, message: &[u8]) {
        let mut writer = self.store.begin().await.unwrap();
        writer.write_all(message).await.unwrap();
        let spooled = writer.finish().await.unwrap();
        spooled
            .deliver(
                &self.maildir(user).await,
                mailstead_store::QuotaLimit::bytes(None),
                None,
            )
            .await
            .unwrap();
    }

    /// The file names in INBOX's `cur/` and `new/`.
    pub async fn files(&self, user: &str) -> Vec<String> {
        let maildir = self.maildir(user).await;
        let mut names = Vec::new();
        for sub in ["cur", "new"] {
            if let Ok(entries) = std::fs::read_dir(maildir.join(sub)) {
                for entry in entries {
                    names.push(entry.unwrap().file_name().to_string_lossy().into_owned());
                }
            }
        }
        // In delivery order: by the seconds, then the store's per-process counter (`Q<n>`).
        // By name alone, `M10973` sorts before `M8838`: a later delivery whose microseconds
        // have one digit more would come first.
        names.sort_by_key(|name| delivery_order(name));
        names
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
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client {
            stream: BufReader::new(stream),
        }
    }

    /// One line with its CRLF; empty at end of stream.
    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_line(&mut line))
            .await
            .expect("server answered within 10 s")
            .unwrap();
        line
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
    }

    /// Sends one command; its one-line reply without CRLF.
    pub async fn command(&mut self, command: &str) -> String {
        self.send(format!("{command}\r\n").as_bytes()).await;
        self.line().await.trim_end().to_owned()
    }

    /// Sends a command whose reply is multi-line: the status line and the raw body up to and
    /// including the final `.` CRLF.
    pub async fn multi(&mut self, command: &str) -> (String, Vec<u8>) {
        self.send(format!("{command}\r\n").as_bytes()).await;
        let status = self.line().await.trim_end().to_owned();
        if !status.starts_with("+OK") {
            return (status, Vec::new());
        }
        (status, self.body().await)
    }

    /// The lines of a multi-line reply up to the final `.` CRLF, as bytes.
    pub async fn body(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let mut line = Vec::new();
            let read = tokio::time::timeout(
                Duration::from_secs(10),
                self.stream.read_until(b'\n', &mut line),
            )
            .await
            .expect("server answered within 10 s")
            .unwrap();
            assert!(read > 0, "connection closed in a multi-line reply");
            body.extend_from_slice(&line);
            if line == b".\r\n" {
                return body;
            }
        }
    }

    /// Whether the server closed the connection (after what it still had to say).
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_to_end(&mut rest))
            .await
            .expect("closed within 10 s")
            .is_ok()
    }
}

pub fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Carol <carol@example.org>\r\nTo: alice@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// The (seconds, counter) of a Maildir name `SECS.M<usec>P<pid>Q<n>.host…`; names that do not
/// have this shape sort first, by their text.
fn delivery_order(name: &str) -> (u64, u64, String) {
    let mut parts = name.splitn(3, '.');
    let seconds = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let counter = parts
        .next()
        .and_then(|unique| unique.rsplit_once('Q'))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0);
    (seconds, counter, name.to_owned())
}
