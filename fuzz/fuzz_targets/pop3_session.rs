//! Feeds arbitrary bytes into one POP3 session over an in-memory duplex stream, after a login
//! so the fuzzer starts in the TRANSACTION state, with a real SQLite directory and a real
//! Maildir holding two messages (delivered again whenever a QUIT expunged them): the session
//! must never panic and must end when the input does. Each line also goes through the parser
//! on its own.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mailstead_pop3::{Limits, Pop3Context};
use mailstead_store::{MailStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    ctx: Arc<Pop3Context>,
    store: Store,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

const PROLOGUE: &[u8] = b"USER alice@example.com\r\nPASS x\r\n";
const MESSAGES: [&[u8]; 2] = [
    b"From: a@example.org\r\nSubject: one\r\n\r\n.body\r\n..\r\n",
    b"Subject: two\n\nbare LF lines\nlast line without end",
];

/// Delivers the messages again when fewer are left in the Maildir.
async fn refill(store: &Store, maildir: &PathBuf) {
    let present: usize = ["new", "cur"]
        .iter()
        .map(|sub| {
            std::fs::read_dir(maildir.join(sub))
                .map(|entries| entries.count())
                .unwrap_or(0)
        })
        .sum();
    if present >= MESSAGES.len() {
        return;
    }
    for message in MESSAGES {
        let mut writer = store.begin().await.expect("spool");
        writer.write_all(message).await.expect("write");
        let spooled = writer.finish().await.expect("finish");
        spooled
            .deliver(maildir, mailstead_store::QuotaLimit::bytes(None), None)
            .await
            .expect("deliver");
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = common::runtime();
        let dir = tempfile::tempdir().expect("temp dir");
        let (ctx, store, maildir) = runtime.block_on(async {
            let (directory, store) = common::directory_and_store(dir.path()).await;
            let maildir = directory
                .mailbox_location("alice@example.com")
                .await
                .expect("location")
                .expect("mailbox exists")
                .maildir;
            refill(&store, &maildir).await;
            let limits = Limits {
                max_line: 1024,
                idle_timeout: Duration::from_millis(50),
                login_timeout: Duration::from_millis(50),
                ..Limits::default()
            };
            // Failed logins answer at once; the penalty still counts them.
            let auth = mailstead_auth::Authenticator::new(
                directory.clone(),
                mailstead_auth::AuthOptions {
                    failure_delay: Duration::ZERO,
                    max_failure_delay: Duration::ZERO,
                    ..mailstead_auth::AuthOptions::default()
                },
            );
            let ctx = Pop3Context::new(directory, MailStore::new(&store), None, limits, true);
            (Arc::new(ctx.with_authenticator(auth)), store, maildir)
        });
        Fixture {
            runtime,
            ctx,
            store,
            maildir,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&byte| byte == b'\n') {
        let _ = mailstead_pop3::parser::parse_command(line);
    }
    let fixture = fixture();
    let mut input = PROLOGUE.to_vec();
    input.extend_from_slice(data);
    fixture.runtime.block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let session = tokio::spawn(mailstead_pop3::serve_stream(
            server,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Arc::clone(&fixture.ctx),
        ));
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = client.write_all(&input).await;
            let _ = client.shutdown().await;
            let _ = client.read_to_end(&mut sink).await;
        });
        let _ = session.await;
        let _ = reader.await;
        refill(&fixture.store, &fixture.maildir).await;
    });
});
