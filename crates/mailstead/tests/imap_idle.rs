//! async-imap (its own parser, imap-proto) against `mailstead serve` over implicit TLS, trusting
//! only the server's self-signed certificate: a session in IDLE is woken with `* n EXISTS` by a
//! message delivered through SMTP (the time it took is printed and must stay under 2 s), and
//! the ENVELOPE and BODYSTRUCTURE of a multipart message parse to the right values.
//!
//! `MAILSTEAD_IMAP_TEST_TARGET=dovecot` runs it against Dovecot instead (to check the test).

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_imap::Session;
use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{Address, BodyStructure, ContentEncoding, MailboxDatum, Response};
use futures_util::TryStreamExt;
use harness::{DOMAIN, PASSWORD, Target};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

type Imap = Session<TlsStream<TcpStream>>;

/// Logs in over implicit TLS, verifying the certificate against `cert` for mail.example.test.
async fn login(port: u16, cert: &Path, user: &str) -> Imap {
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(der.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("mail.example.test").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let mut client = async_imap::Client::new(tls);
    let greeting = client.read_response().await.unwrap().unwrap();
    assert!(
        matches!(greeting.parsed(), Response::Data { .. }),
        "greeting: {:?}",
        greeting.parsed()
    );
    client
        .login(user, PASSWORD)
        .await
        .map_err(|(err, _)| err)
        .unwrap()
}

const MULTIPART: &str = "From: \"Dana Sender\" <dana@client.test>\r\n\
To: user1@example.test, \"Eve Two\" <eve@client.test>\r\n\
Subject: Quarterly report\r\n\
Date: Fri, 06 Mar 2026 08:30:00 +0100\r\n\
Message-ID: <report-1@client.test>\r\n\
In-Reply-To: <earlier@client.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Plain text version.\r\n\
Second line.\r\n\
\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
<p>HTML version</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"report.pdf\"\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK\r\n\
--outer--\r\n";

fn text(value: Option<&Cow<'_, [u8]>>) -> String {
    String::from_utf8_lossy(value.map(|v| v.as_ref()).unwrap_or(b"<NIL>")).into_owned()
}

fn addresses(list: Option<&Vec<Address<'_>>>) -> Vec<(String, String, String)> {
    list.map(|list| {
        list.iter()
            .map(|a| {
                (
                    text(a.name.as_ref()),
                    text(a.mailbox.as_ref()),
                    text(a.host.as_ref()),
                )
            })
            .collect()
    })
    .unwrap_or_default()
}

fn param<'a>(params: &'a Option<Vec<(Cow<'_, str>, Cow<'_, str>)>>, key: &str) -> Option<&'a str> {
    params
        .as_ref()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_ref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_wakes_on_smtp_delivery_and_structures_parse() {
    let temp = tempfile::tempdir().unwrap();
    let user = format!("user1@{DOMAIN}");
    let target = Target::start(temp.path(), std::slice::from_ref(&user), "");
    let delivery = target.delivery();

    let run = async {
        let mut session = login(target.imaps_port(), &target.cert(), &user).await;
        let inbox = session.select("INBOX").await.unwrap();
        assert_eq!(inbox.exists, 0, "fresh INBOX: {inbox:?}");
        assert!(inbox.uid_validity.is_some(), "no UIDVALIDITY: {inbox:?}");

        let mut idle = session.idle();
        idle.init().await.unwrap();
        let recipient = user.clone();
        let started = Instant::now();
        let sender = tokio::task::spawn_blocking(move || {
            delivery.deliver(&recipient, MULTIPART);
            Instant::now()
        });
        let woke = loop {
            let (wait, _stop) = idle.wait_with_timeout(Duration::from_secs(10));
            match wait.await.unwrap() {
                IdleResponse::NewData(data) => match data.parsed() {
                    Response::MailboxData(MailboxDatum::Exists(n)) => {
                        assert_eq!(*n, 1, "EXISTS count");
                        break Instant::now();
                    }
                    // `* 1 RECENT` and the like may come first.
                    other => println!("IDLE also got {other:?}"),
                },
                other => panic!(
                    "IDLE did not report the delivered message within 10 s: {other:?}\n\
                     --- server log:\n{}",
                    target.log()
                ),
            }
        };
        let accepted = sender.await.unwrap();
        let after_acceptance = woke.saturating_duration_since(accepted);
        let total = woke - started;
        println!(
            "IDLE woke {:.1} ms after SMTP accepted the message ({:.1} ms after sending began)",
            after_acceptance.as_secs_f64() * 1000.0,
            total.as_secs_f64() * 1000.0
        );

        let mut session = idle.done().await.unwrap();
        session.noop().await.unwrap();

        // ENVELOPE and BODYSTRUCTURE, parsed by imap-proto.
        let fetched: Vec<_> = session
            .fetch("1", "(UID ENVELOPE BODYSTRUCTURE FLAGS)")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(fetched.len(), 1, "{fetched:?}");
        let message = &fetched[0];
        assert!(message.uid.is_some(), "no UID in {message:?}");
        let envelope = message.envelope().expect("ENVELOPE");
        assert_eq!(text(envelope.subject.as_ref()), "Quarterly report");
        assert_eq!(
            text(envelope.date.as_ref()),
            "Fri, 06 Mar 2026 08:30:00 +0100"
        );
        assert_eq!(
            addresses(envelope.from.as_ref()),
            [("Dana Sender".into(), "dana".into(), "client.test".into())]
        );
        // Sender and Reply-To default to From (RFC 3501 7.4.2).
        assert_eq!(
            addresses(envelope.sender.as_ref()),
            addresses(envelope.from.as_ref())
        );
        assert_eq!(
            addresses(envelope.reply_to.as_ref()),
            addresses(envelope.from.as_ref())
        );
        assert_eq!(
            addresses(envelope.to.as_ref()),
            [
                ("<NIL>".into(), "user1".into(), "example.test".into()),
                ("Eve Two".into(), "eve".into(), "client.test".into())
            ]
        );
        assert!(
            envelope.cc.is_none() && envelope.bcc.is_none(),
            "{envelope:?}"
        );
        assert_eq!(text(envelope.in_reply_to.as_ref()), "<earlier@client.test>");
        assert_eq!(text(envelope.message_id.as_ref()), "<report-1@client.test>");

        let structure = message.bodystructure().expect("BODYSTRUCTURE");
        let BodyStructure::Multipart { common, bodies, .. } = structure else {
            panic!("not multipart: {structure:?}");
        };
        assert!(common.ty.ty.eq_ignore_ascii_case("multipart"), "{common:?}");
        assert!(
            common.ty.subtype.eq_ignore_ascii_case("mixed"),
            "{common:?}"
        );
        assert_eq!(param(&common.ty.params, "boundary"), Some("outer"));
        assert_eq!(bodies.len(), 2, "{structure:?}");
        let BodyStructure::Multipart {
            common: alternative,
            bodies: versions,
            ..
        } = &bodies[0]
        else {
            panic!("first part is not multipart/alternative: {:?}", bodies[0]);
        };
        assert!(alternative.ty.subtype.eq_ignore_ascii_case("alternative"));
        assert_eq!(param(&alternative.ty.params, "boundary"), Some("inner"));
        assert_eq!(versions.len(), 2, "{versions:?}");
        let BodyStructure::Text {
            common: plain,
            other,
            lines,
            ..
        } = &versions[0]
        else {
            panic!("1.1 is not text: {:?}", versions[0]);
        };
        assert!(plain.ty.subtype.eq_ignore_ascii_case("plain"), "{plain:?}");
        assert_eq!(
            param(&plain.ty.params, "charset").map(str::to_ascii_lowercase),
            Some("us-ascii".into())
        );
        // Ends with CRLF (the one before the boundary belongs to it), so 2 lines unambiguously.
        assert_eq!(other.octets, 35, "size of 1.1");
        assert_eq!(*lines, 2, "lines of 1.1");
        assert_eq!(other.transfer_encoding, ContentEncoding::SevenBit);
        let BodyStructure::Text {
            common: html,
            other,
            ..
        } = &versions[1]
        else {
            panic!("1.2 is not text: {:?}", versions[1]);
        };
        assert!(html.ty.subtype.eq_ignore_ascii_case("html"), "{html:?}");
        assert_eq!(other.transfer_encoding, ContentEncoding::QuotedPrintable);
        assert_eq!(other.octets, 19, "size of 1.2");
        let BodyStructure::Basic {
            common: pdf,
            other,
            extension,
        } = &bodies[1]
        else {
            panic!("2 is not a basic part: {:?}", bodies[1]);
        };
        assert!(pdf.ty.ty.eq_ignore_ascii_case("application"), "{pdf:?}");
        assert!(pdf.ty.subtype.eq_ignore_ascii_case("pdf"), "{pdf:?}");
        assert_eq!(param(&pdf.ty.params, "name"), Some("report.pdf"));
        assert_eq!(other.transfer_encoding, ContentEncoding::Base64);
        assert_eq!(other.octets, 64, "size of 2");
        let disposition = pdf.disposition.as_ref().expect("Content-Disposition");
        assert!(
            disposition.ty.eq_ignore_ascii_case("attachment"),
            "{disposition:?}"
        );
        assert_eq!(param(&disposition.params, "filename"), Some("report.pdf"));
        let _ = extension;

        // The part itself, by section number.
        let parts: Vec<_> = session
            .fetch("1", "(BODY.PEEK[1.1] BODY.PEEK[2])")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let part = |path: Vec<u32>| {
            parts
                .iter()
                .find_map(|f| {
                    f.section(&async_imap::imap_proto::SectionPath::Part(
                        path.clone(),
                        None,
                    ))
                })
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        assert_eq!(
            part(vec![1, 1]).as_deref(),
            Some("Plain text version.\r\nSecond line.\r\n")
        );
        assert_eq!(
            part(vec![2]).as_deref(),
            Some("JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK")
        );
        session.logout().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| panic!("timed out; server log:\n{}", target.log()));
}
