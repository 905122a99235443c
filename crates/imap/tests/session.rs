//! The IMAP server over a real socket: a real SQLite directory, real Maildirs, TLS from rcgen,
//! and a line-level client that checks the exact responses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers: a failure is the test failing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailstead_directory::manage::{NewDomain, NewMailbox};
use mailstead_directory::model::Quota;
use mailstead_directory::{Directory, DirectoryOptions};
use mailstead_imap::{ImapContext, Limits, Security, TlsConfig};
use mailstead_store::{MailStore, Store};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Server {
    port: u16,
    tls_port: u16,
    store: Store,
    directory: Directory,
    certificate: rustls::pki_types::CertificateDer<'static>,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn tls_config() -> (
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

async fn start(login_on_loopback: bool) -> Server {
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
    for (name, quota) in [("alice", None), ("bob", None), ("small", Some(2000))] {
        directory
            .add_mailbox(
                "test",
                NewMailbox {
                    address: format!("{name}@example.com"),
                    password_hash: "{PLAIN}secret".into(),
                    quota: quota.map(|bytes| Quota { bytes: Some(bytes) }),
                    active: true,
                    ..NewMailbox::default()
                },
            )
            .await
            .unwrap();
    }
    let store = Store::new("imap.test", dir.path().join("spool")).unwrap();
    let (tls, certificate) = tls_config();
    let ctx = Arc::new(ImapContext::new(
        directory.clone(),
        MailStore::new(&store),
        "imap.test".into(),
        Some(Arc::new(TlsConfig::new(tls))),
        Limits {
            max_line: 4096,
            max_literal: 100_000,
            failed_login_delay: Duration::from_millis(10),
            max_connections_per_user: 4,
            ..Limits::default()
        },
        login_on_loopback,
    ));
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
        async move {
            let _ = stopped.await;
            let _ = stop_tls.send(());
        },
    ));
    tokio::spawn(mailstead_imap::serve(
        tls_listener,
        ctx,
        Security::ImplicitTls,
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
        _dir: dir,
        _stop: stop,
    }
}

impl Server {
    async fn maildir(&self, user: &str) -> PathBuf {
        self.directory
            .mailbox_location(&format!("{user}@example.com"))
            .await
            .unwrap()
            .unwrap()
            .maildir
    }

    async fn client(&self) -> Client<TcpStream> {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut client = Client::new(stream);
        let greeting = client.line().await;
        assert!(
            greeting.starts_with("* OK [CAPABILITY IMAP4rev1"),
            "{greeting}"
        );
        client
    }

    async fn logged_in(&self, user: &str) -> Client<TcpStream> {
        let mut client = self.client().await;
        let (_, done) = client
            .run(&format!("LOGIN {user}@example.com secret"))
            .await;
        assert!(done.contains("OK [CAPABILITY"), "{done}");
        client
    }

    /// Delivers a message the way SMTP does: spooled once, then into the Maildir.
    async fn deliver(&self, user: &str, message: &str) {
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
            .deliver(&self.maildir(user).await, quota, None)
            .await
            .unwrap();
    }

    fn tls_connector(&self) -> tokio_rustls::TlsConnector {
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

struct Client<S> {
    stream: BufReader<S>,
    next_tag: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    fn new(stream: S) -> Client<S> {
        Client {
            stream: BufReader::new(stream),
            next_tag: 1,
        }
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(10), self.stream.read_line(&mut line))
            .await
            .expect("server answered within 10 s")
            .unwrap();
        assert!(read > 0, "connection closed");
        line
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
    }

    /// Sends `command` with a fresh tag; returns the untagged lines (literals inline) and the
    /// tagged completion.
    async fn run(&mut self, command: &str) -> (Vec<String>, String) {
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        self.until_tagged(&tag).await
    }

    async fn until_tagged(&mut self, tag: &str) -> (Vec<String>, String) {
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

fn literal_size(line: &str) -> Option<usize> {
    let line = line.trim_end();
    let open = line.rfind('{')?;
    line.strip_suffix('}')?.get(open + 1..)?.parse().ok()
}

fn message(subject: &str, body: &str) -> String {
    format!(
        "From: Carol <carol@example.org>\r\nTo: alice@example.com\r\nSubject: {subject}\r\n\
         Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@example.org>\r\n\r\n{body}\r\n"
    )
}

#[tokio::test]
async fn login_select_fetch_store_search_and_logout() {
    let server = start(true).await;
    server
        .deliver("alice", &message("first", "Hello there"))
        .await;
    server
        .deliver("alice", &message("second", "Another one"))
        .await;
    let mut client = server.logged_in("alice").await;

    let (untagged, done) = client.run("SELECT INBOX").await;
    assert_eq!(done, "OK [READ-WRITE] Select completed.");
    assert!(untagged.contains(&"* 2 EXISTS".to_owned()), "{untagged:?}");
    assert!(untagged.contains(&"* 2 RECENT".to_owned()), "{untagged:?}");
    assert!(
        untagged.iter().any(|l| l.starts_with("* OK [UIDVALIDITY ")),
        "{untagged:?}"
    );
    assert!(
        untagged.contains(&"* OK [UIDNEXT 3] Predicted next UID.".to_owned()),
        "{untagged:?}"
    );
    assert!(
        untagged.iter().any(|l| l.starts_with(
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]"
        )),
        "{untagged:?}"
    );

    let (untagged, done) = client.run("FETCH 1:* (UID FLAGS RFC822.SIZE)").await;
    assert_eq!(done, "OK Fetch completed.");
    let size = message("first", "Hello there").len();
    assert_eq!(
        untagged[0],
        format!("* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE {size})")
    );
    assert!(untagged[1].starts_with("* 2 FETCH (UID 2 "), "{untagged:?}");

    let (untagged, _) = client.run("UID FETCH 2 (ENVELOPE)").await;
    assert!(untagged[0].contains("\"second\""), "{untagged:?}");
    assert!(
        untagged[0].contains("((\"Carol\" NIL \"carol\" \"example.org\"))"),
        "{untagged:?}"
    );

    // BODY[] sets \Seen; BODY.PEEK does not.
    let (untagged, _) = client.run("FETCH 2 (BODY.PEEK[TEXT])").await;
    assert!(untagged[0].contains("Another one"), "{untagged:?}");
    assert!(!untagged[0].contains("\\Seen"), "{untagged:?}");
    let (untagged, _) = client.run("FETCH 1 (BODY[])").await;
    assert!(untagged[0].contains("\\Seen"), "{untagged:?}");
    assert!(untagged[0].contains("Subject: first"), "{untagged:?}");

    let (untagged, done) = client.run("STORE 2 +FLAGS ($Work \\Flagged)").await;
    assert_eq!(done, "OK Store completed.");
    assert!(
        untagged
            .iter()
            .any(|l| l.starts_with("* FLAGS (") && l.contains("$Work")),
        "{untagged:?}"
    );
    assert!(
        untagged
            .iter()
            .any(|l| l == "* 2 FETCH (FLAGS (\\Flagged \\Recent $Work))"),
        "{untagged:?}"
    );

    let (untagged, _) = client.run("SEARCH UNSEEN").await;
    assert_eq!(untagged, vec!["* SEARCH 2"]);
    let (untagged, _) = client.run("UID SEARCH KEYWORD $Work SUBJECT second").await;
    assert_eq!(untagged, vec!["* SEARCH 2"]);
    // Answered from the header cache the previous search filled.
    let (untagged, _) = client.run("SEARCH FROM carol SINCE 1-Jan-2020").await;
    assert_eq!(untagged, vec!["* SEARCH 1 2"]);
    let (untagged, _) = client.run("SEARCH BODY hello").await;
    assert_eq!(untagged, vec!["* SEARCH 1"]);
    let (untagged, _) = client.run("SEARCH RETURN (MIN MAX COUNT) ALL").await;
    assert_eq!(
        untagged,
        vec!["* ESEARCH (TAG \"a12\") MIN 1 MAX 2 COUNT 2"]
    );
    let (_, done) = client.run("SEARCH CHARSET KOI8-R ALL").await;
    assert!(done.starts_with("NO [BADCHARSET"), "{done}");

    let (untagged, done) = client.run("LOGOUT").await;
    assert_eq!(untagged, vec!["* BYE Logging out."]);
    assert_eq!(done, "OK Logout completed.");
}

#[tokio::test]
async fn append_copy_move_expunge_with_uidplus() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let text = message("appended", "body");
    let (_, done) = client
        .run(&format!(
            "APPEND INBOX (\\Seen) {{{}+}}\r\n{text}",
            text.len()
        ))
        .await;
    assert!(done.starts_with("OK [APPENDUID "), "{done}");
    assert!(done.ends_with(" 1] Append completed."), "{done}");
    let (_, done) = client.run("APPEND Nowhere {3+}\r\nabc").await;
    assert!(done.starts_with("NO [TRYCREATE]"), "{done}");

    client.run("SELECT INBOX").await;
    let (_, done) = client.run("CREATE Work/Projects").await;
    assert_eq!(done, "OK Create completed.");
    let (_, done) = client.run("COPY 1 Work/Projects").await;
    assert!(
        done.starts_with("OK [COPYUID ") && done.contains(" 1 1]"),
        "{done}"
    );
    let (_, done) = client.run("COPY 1 Missing").await;
    assert!(done.starts_with("NO [TRYCREATE]"), "{done}");
    let (untagged, done) = client.run("MOVE 1 Archive").await;
    assert_eq!(done, "OK Move completed.");
    assert!(untagged[0].starts_with("* OK [COPYUID "), "{untagged:?}");
    assert_eq!(untagged[1], "* 1 EXPUNGE");

    let (untagged, _) = client
        .run("STATUS Work/Projects (MESSAGES UIDNEXT UNSEEN)")
        .await;
    assert_eq!(
        untagged,
        vec!["* STATUS Work/Projects (MESSAGES 1 UIDNEXT 2 UNSEEN 0)"]
    );

    client.run("SELECT Work/Projects").await;
    client.run("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    let (untagged, done) = client.run("EXPUNGE").await;
    assert_eq!(done, "OK Expunge completed.");
    assert_eq!(untagged, vec!["* 1 EXPUNGE"]);
    let (untagged, _) = client.run("STATUS Work/Projects (MESSAGES UIDNEXT)").await;
    assert_eq!(
        untagged,
        vec!["* STATUS Work/Projects (MESSAGES 0 UIDNEXT 2)"]
    );
}

#[tokio::test]
async fn list_shows_special_use_folders_and_children() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    client.run("CREATE a/b").await;
    let (untagged, _) = client.run("LIST \"\" \"*\"").await;
    for expected in [
        "* LIST (\\HasNoChildren) \"/\" INBOX",
        "* LIST (\\HasNoChildren \\Sent) \"/\" Sent",
        "* LIST (\\HasNoChildren \\Trash) \"/\" Trash",
        "* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts",
        "* LIST (\\HasNoChildren \\Junk) \"/\" Junk",
        "* LIST (\\HasNoChildren \\Archive) \"/\" Archive",
        "* LIST (\\HasChildren) \"/\" a",
        "* LIST (\\HasNoChildren) \"/\" a/b",
    ] {
        assert!(
            untagged.contains(&expected.to_owned()),
            "{expected} not in {untagged:?}"
        );
    }
    let (untagged, _) = client.run("LIST \"\" %").await;
    assert!(
        !untagged.iter().any(|l| l.ends_with(" a/b")),
        "{untagged:?}"
    );
    let (untagged, _) = client.run("LIST \"\" \"\"").await;
    assert_eq!(untagged, vec!["* LIST (\\Noselect) \"/\" \"\""]);
    let (untagged, _) = client
        .run("LIST (SPECIAL-USE) \"\" \"*\" RETURN (STATUS (MESSAGES))")
        .await;
    assert!(
        untagged.contains(&"* STATUS Sent (MESSAGES 0)".to_owned()),
        "{untagged:?}"
    );
    assert!(
        !untagged.iter().any(|l| l.ends_with(" INBOX")),
        "{untagged:?}"
    );
    client.run("SUBSCRIBE a/b").await;
    let (untagged, _) = client.run("LSUB \"\" *").await;
    assert!(
        untagged.contains(&"* LSUB () \"/\" a/b".to_owned()),
        "{untagged:?}"
    );
    let (_, done) = client.run("DELETE INBOX").await;
    assert!(done.starts_with("NO"), "{done}");
    let (_, done) = client.run("RENAME a/b a/c").await;
    assert_eq!(done, "OK Rename completed.");
    let (untagged, _) = client.run("NAMESPACE").await;
    assert_eq!(untagged, vec!["* NAMESPACE ((\"\" \"/\")) NIL NIL"]);
}

#[tokio::test]
async fn another_session_sees_flags_expunges_and_deliveries() {
    let server = start(true).await;
    server.deliver("bob", &message("one", "1")).await;
    server.deliver("bob", &message("two", "2")).await;
    let mut first = server.logged_in("bob").await;
    let mut second = server.logged_in("bob").await;
    first.run("SELECT INBOX").await;
    second.run("SELECT INBOX").await;

    first.run("STORE 1 +FLAGS.SILENT (\\Seen)").await;
    let (untagged, _) = second.run("NOOP").await;
    assert_eq!(untagged, vec!["* 1 FETCH (FLAGS (\\Seen))"]);

    first.run("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    first.run("EXPUNGE").await;
    // During FETCH the expunge must not be announced; after NOOP it is.
    let (untagged, _) = second.run("FETCH 1 (FLAGS)").await;
    assert!(
        !untagged.iter().any(|l| l.ends_with("EXPUNGE")),
        "{untagged:?}"
    );
    let (untagged, _) = second.run("NOOP").await;
    assert!(untagged.contains(&"* 2 EXPUNGE".to_owned()), "{untagged:?}");

    server.deliver("bob", &message("three", "3")).await;
    let (untagged, _) = second.run("NOOP").await;
    assert!(untagged.contains(&"* 2 EXISTS".to_owned()), "{untagged:?}");
    let (untagged, _) = second.run("UID FETCH 3 (UID)").await;
    assert_eq!(untagged, vec!["* 2 FETCH (UID 3)"], "UID 2 is never reused");
}

#[tokio::test]
async fn idle_wakes_on_delivery() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    client.run("SELECT INBOX").await;
    client.send(b"i1 IDLE\r\n").await;
    assert_eq!(client.line().await.trim_end(), "+ idling");
    let started = Instant::now();
    server.deliver("alice", &message("wake", "up")).await;
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l == "* 1 EXISTS") {
        lines.push(client.line().await.trim_end().to_owned());
    }
    let elapsed = started.elapsed();
    println!("IDLE saw the delivery after {elapsed:?}");
    client.send(b"DONE\r\n").await;
    let (_, done) = client.until_tagged("i1").await;
    assert_eq!(done, "OK IDLE terminated.");
}

#[tokio::test]
async fn condstore_and_qresync() {
    let server = start(true).await;
    server.deliver("alice", &message("one", "1")).await;
    server.deliver("alice", &message("two", "2")).await;
    let mut client = server.logged_in("alice").await;
    let (untagged, _) = client.run("ENABLE QRESYNC").await;
    assert_eq!(untagged, vec!["* ENABLED QRESYNC"]);
    let (untagged, _) = client.run("SELECT INBOX").await;
    let validity: u32 = untagged
        .iter()
        .find_map(|l| l.strip_prefix("* OK [UIDVALIDITY "))
        .and_then(|rest| rest.split(']').next())
        .unwrap()
        .parse()
        .unwrap();
    let modseq: u64 = untagged
        .iter()
        .find_map(|l| l.strip_prefix("* OK [HIGHESTMODSEQ "))
        .and_then(|rest| rest.split(']').next())
        .unwrap()
        .parse()
        .unwrap();
    let (untagged, _) = client.run("UID STORE 1 +FLAGS (\\Answered)").await;
    assert!(
        untagged[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Answered \\Recent) MODSEQ ("),
        "{untagged:?}"
    );
    let (_, done) = client
        .run(&format!(
            "STORE 1 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Flagged)"
        ))
        .await;
    assert!(done.starts_with("OK [MODIFIED 1]"), "{done}");
    client.run("UID STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    let (untagged, _) = client.run("EXPUNGE").await;
    assert_eq!(untagged, vec!["* VANISHED 2"]);
    let (untagged, _) = client
        .run(&format!(
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)"
        ))
        .await;
    assert!(
        untagged.contains(&"* VANISHED (EARLIER) 2".to_owned()),
        "{untagged:?}"
    );
    assert!(
        untagged
            .iter()
            .any(|l| l.starts_with("* 1 FETCH (UID 1 FLAGS (\\Answered")),
        "{untagged:?}"
    );
    client.run("UNSELECT").await;
    let (untagged, done) = client
        .run(&format!("SELECT INBOX (QRESYNC ({validity} {modseq}))"))
        .await;
    assert_eq!(done, "OK [READ-WRITE] Select completed.");
    assert!(
        untagged.contains(&"* VANISHED (EARLIER) 2".to_owned()),
        "{untagged:?}"
    );
    assert!(
        untagged
            .iter()
            .any(|l| l.starts_with("* 1 FETCH (UID 1 FLAGS (\\Answered")),
        "{untagged:?}"
    );
}

#[tokio::test]
async fn passwords_need_tls_unless_loopback_is_allowed() {
    let server = start(false).await;
    let mut client = server.client().await;
    let (untagged, _) = client.run("CAPABILITY").await;
    assert!(
        untagged[0].contains("LOGINDISABLED") && untagged[0].contains("STARTTLS"),
        "{untagged:?}"
    );
    let (_, done) = client.run("LOGIN alice@example.com secret").await;
    assert!(done.starts_with("NO [PRIVACYREQUIRED]"), "{done}");
    let (_, done) = client.run("STARTTLS").await;
    assert_eq!(done, "OK Begin TLS negotiation now.");
    let stream = client.stream.into_inner();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = server
        .tls_connector()
        .connect(name.clone(), stream)
        .await
        .unwrap();
    let mut client = Client::new(tls);
    let (untagged, _) = client.run("CAPABILITY").await;
    assert!(
        untagged[0].contains("AUTH=PLAIN") && !untagged[0].contains("STARTTLS"),
        "{untagged:?}"
    );
    // AUTHENTICATE PLAIN with SASL-IR: "\0alice@example.com\0secret".
    let (_, done) = client
        .run("AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==")
        .await;
    assert!(done.starts_with("OK [CAPABILITY"), "{done}");

    // Implicit TLS: the same over port 993's listener.
    let stream = TcpStream::connect(("127.0.0.1", server.tls_port))
        .await
        .unwrap();
    let tls = server.tls_connector().connect(name, stream).await.unwrap();
    let mut client = Client::new(tls);
    assert!(client.line().await.starts_with("* OK [CAPABILITY"));
    let (_, done) = client.run("LOGIN bob@example.com secret").await;
    assert!(done.starts_with("OK [CAPABILITY"), "{done}");
}

#[tokio::test]
async fn bad_input_gets_clear_answers() {
    let server = start(true).await;
    let mut client = server.client().await;
    let (_, done) = client.run("FROBNICATE").await;
    assert!(done.starts_with("BAD"), "{done}");
    let (_, done) = client.run("SELECT INBOX").await;
    assert!(done.starts_with("BAD"), "{done}");
    let (_, done) = client.run("LOGIN alice@example.com wrong").await;
    assert_eq!(done, "NO [AUTHENTICATIONFAILED] Authentication failed.");
    client.run("LOGIN alice@example.com secret").await;
    let (_, done) = client.run("FETCH 1 FLAGS").await;
    assert_eq!(done, "BAD No mailbox selected.");
    client.run("SELECT INBOX").await;
    let (_, done) = client.run("FETCH 5 FLAGS").await;
    assert!(done.starts_with("BAD"), "{done}");
    // A literal over the limit is refused before the client sends it.
    let (_, done) = client.run("APPEND INBOX {200000}").await;
    assert!(
        done.starts_with("NO [TOOBIG]") || done.starts_with("BAD"),
        "{done}"
    );
    // An over-long line is answered, and the session goes on.
    let long = format!("a99 NOOP {}\r\n", "x".repeat(10_000));
    client.send(long.as_bytes()).await;
    let answer = client.line().await;
    assert!(answer.contains("BAD"), "{answer}");
    let (_, done) = client.run("NOOP").await;
    assert_eq!(done, "OK NOOP completed.");
}

#[tokio::test]
async fn quota_is_reported_and_enforced() {
    let server = start(true).await;
    let mut client = server.logged_in("small").await;
    let (untagged, done) = client.run("GETQUOTAROOT INBOX").await;
    assert_eq!(done, "OK Getquotaroot completed.");
    assert_eq!(
        untagged,
        vec!["* QUOTAROOT INBOX \"\"", "* QUOTA \"\" (STORAGE 0 1)"]
    );
    let big = message("big", &"x".repeat(3000));
    let (_, done) = client
        .run(&format!("APPEND INBOX {{{}+}}\r\n{big}", big.len()))
        .await;
    assert!(done.starts_with("NO [OVERQUOTA]"), "{done}");
}

#[tokio::test]
async fn connections_per_user_are_limited() {
    let server = start(true).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(server.logged_in("alice").await);
    }
    let mut fifth = server.client().await;
    let (_, done) = fifth.run("LOGIN alice@example.com secret").await;
    assert!(done.starts_with("NO [LIMIT]"), "{done}");
    clients.pop();
    // The slot comes back when a session ends; give the server a moment to see the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, done) = fifth.run("LOGIN alice@example.com secret").await;
        if done.starts_with("OK") {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed: {done}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        fifth = server.client().await;
    }
}

// ---- Hardening (store): folder names the Maildir cannot hold get a clean NO [CANNOT] ----

#[tokio::test]
async fn folder_names_that_collide_or_overflow_are_refused_with_cannot() {
    let server = start(true).await;
    let mut client = server.logged_in("alice").await;
    let deep = (0..21)
        .map(|n| format!("L{n}"))
        .collect::<Vec<_>>()
        .join("/");
    let long = "x".repeat(300);
    let over_long = "y".repeat(1000);
    for (name, reason) in [
        ("dovecot-uidlist.lock", "kept for the server's files"),
        ("Work/dovecot-keywords", "kept for the server's files"),
        ("maildirsize", "Maildir's own files"),
        ("tmp", "Maildir's own directories"),
        ("Archive/x.lock", "lock files"),
        (deep.as_str(), "20 hierarchy levels"),
        (long.as_str(), "longer than 255 bytes on disk"),
        (over_long.as_str(), "longer than 255 bytes on disk"),
    ] {
        let (_, done) = client.run(&format!("CREATE \"{name}\"")).await;
        assert!(
            done.starts_with("NO [CANNOT] Invalid mailbox name:") && done.contains(reason),
            "{}: {done}",
            &name[..name.len().min(40)]
        );
        let (_, done) = client.run(&format!("RENAME Archive \"{name}\"")).await;
        assert!(done.starts_with("NO [CANNOT]"), "{done}");
    }
    // Deliveries and APPENDs go on as before.
    let mail = message("after", "still works");
    let (_, done) = client
        .run(&format!("APPEND INBOX {{{}+}}\r\n{mail}", mail.len()))
        .await;
    assert!(done.starts_with("OK [APPENDUID"), "{done}");
    let (_, done) = client.run("SELECT INBOX").await;
    assert!(done.starts_with("OK"), "{done}");
}
