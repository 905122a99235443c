//! Feeds arbitrary bytes into one IMAP session over an in-memory duplex stream, after a login
//! and a SELECT so the fuzzer starts where most commands are allowed, with a real SQLite
//! directory and a real Maildir holding two messages: the session must never panic and must
//! end when the input does.
//!
//! Input starting with [`COMPRESSED`] goes through COMPRESS=DEFLATE instead: after the
//! prologue the client sends `COMPRESS DEFLATE`, waits for the OK, and then sends the rest
//! either as it is, as the raw deflate stream (the next byte odd: the inflater meets
//! garbage), or compressed by flate2 (even: the decompressed commands meet the framer).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mailstead_imap::{ImapContext, Limits};
use mailstead_store::MailStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    ctx: Arc<ImapContext>,
    _dir: tempfile::TempDir,
}

const PROLOGUE: &[u8] = b"a LOGIN alice@example.com x\r\nb SELECT INBOX\r\n";
/// The first byte of an input that is sent compressed.
const COMPRESSED: u8 = 0xC5;

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = common::runtime();
        let dir = tempfile::tempdir().expect("temp dir");
        let ctx = runtime.block_on(async {
            let (directory, store) = common::directory_and_store(dir.path()).await;
            let location = directory
                .mailbox_location("alice@example.com")
                .await
                .expect("location")
                .expect("mailbox exists");
            let quota = directory
                .quota("alice@example.com")
                .await
                .expect("quota")
                .expect("mailbox exists");
            for message in [
                &b"From: a@example.org\r\nSubject: one\r\n\r\nbody\r\n"[..],
                b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\npart\r\n--x--\r\n",
            ] {
                let mut writer = store.begin().await.expect("spool");
                writer.write_all(message).await.expect("write");
                let spooled = writer.finish().await.expect("finish");
                spooled
                    .deliver(
                        &location.maildir,
                        mailstead_store::QuotaLimit::bytes(quota.bytes),
                        None,
                    )
                    .await
                    .expect("deliver");
            }
            let limits = Limits {
                max_line: 1024,
                max_literal: 4096,
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
            let ctx = ImapContext::new(
                directory,
                MailStore::new(&store),
                "imap.example.com".into(),
                None,
                limits,
                true,
            );
            Arc::new(ctx.with_authenticator(auth))
        });
        Fixture {
            runtime,
            ctx,
            _dir: dir,
        }
    })
}

/// The session over COMPRESS=DEFLATE (see the module comment).
fn run_compressed(fixture: &'static Fixture, data: &[u8]) {
    let (raw, rest) = match data.split_first() {
        Some((mode, rest)) => (mode & 1 == 1, rest),
        None => (false, data),
    };
    let stream = if raw {
        rest.to_vec()
    } else {
        let mut compress = flate2::Compress::new(flate2::Compression::fast(), false);
        let mut out = Vec::with_capacity(rest.len() + 1024);
        // One sync flush per 64 bytes: the session sees commands arrive in pieces.
        for chunk in rest.chunks(64) {
            out.reserve(chunk.len() + 64);
            let _ = compress.compress_vec(chunk, &mut out, flate2::FlushCompress::Sync);
        }
        out
    };
    fixture.runtime.block_on(async move {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let session = tokio::spawn(mailstead_imap::serve_stream(
            server,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Arc::clone(&fixture.ctx),
        ));
        let (reader, mut writer) = tokio::io::split(client);
        let mut reader = tokio::io::BufReader::new(reader);
        let mut prologue = PROLOGUE.to_vec();
        prologue.extend_from_slice(b"c COMPRESS DEFLATE\r\n");
        let _ = writer.write_all(&prologue).await;
        let mut line = String::new();
        loop {
            line.clear();
            match tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) if line.starts_with("c ") => break,
                Ok(_) => {}
            }
        }
        let send = async move {
            let _ = writer.write_all(&stream).await;
            let _ = writer.shutdown().await;
        };
        let drain = async move {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink).await;
        };
        tokio::join!(send, drain);
        let _ = session.await;
    });
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    if let Some((&COMPRESSED, rest)) = data.split_first() {
        run_compressed(fixture, rest);
        return;
    }
    let mut input = PROLOGUE.to_vec();
    input.extend_from_slice(data);
    fixture.runtime.block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let session = tokio::spawn(mailstead_imap::serve_stream(
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
    });
});
