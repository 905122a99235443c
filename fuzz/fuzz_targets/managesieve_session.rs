//! Feeds arbitrary bytes into one ManageSieve session over an in-memory duplex stream, after
//! an AUTHENTICATE so the fuzzer starts logged in, with a real SQLite directory and the user's
//! scripts in a real home directory (PUTSCRIPT, SETACTIVE, RENAMESCRIPT and DELETESCRIPT reach
//! the files): the session must never panic and must end when the input does. The whole input
//! also goes through the command parser, the SASL answer parser and the literal check on its
//! own.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mailstead_managesieve::parser::{literal_announcement, parse_command, parse_sasl_response};
use mailstead_managesieve::{Limits, ManageSieveContext};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    ctx: Arc<ManageSieveContext>,
    _dir: tempfile::TempDir,
}

/// `AUTHENTICATE "PLAIN"` with `\0alice@example.com\0x`.
const PROLOGUE: &[u8] = b"AUTHENTICATE \"PLAIN\" \"AGFsaWNlQGV4YW1wbGUuY29tAHg=\"\r\n";

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = common::runtime();
        let dir = tempfile::tempdir().expect("temp dir");
        let ctx = runtime.block_on(async {
            let (directory, _store) = common::directory_and_store(dir.path()).await;
            // Small limits so that the too-long, too-big and quota paths are reached often.
            let limits = Limits {
                max_line: 256,
                max_input_before_login: 256,
                max_script_size: 4096,
                max_scripts: 4,
                max_storage: 8192,
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
            let ctx = ManageSieveContext::new(directory, None, limits, true);
            Arc::new(ctx.with_authenticator(auth))
        });
        Fixture {
            runtime,
            ctx,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_command(data);
    let _ = parse_sasl_response(data);
    let _ = literal_announcement(data);
    let fixture = fixture();
    let mut input = PROLOGUE.to_vec();
    input.extend_from_slice(data);
    fixture.runtime.block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let session = tokio::spawn(mailstead_managesieve::serve_stream(
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
