//! Feeds arbitrary bytes into one SMTP session over an in-memory duplex stream, with a real
//! SQLite directory (one domain, one mailbox) and a real spool: the session must never panic
//! and must end when the input does.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mailstead_smtp::{Limits, Mode, SmtpContext};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    ctx: Arc<SmtpContext>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = common::runtime();
        let dir = tempfile::tempdir().expect("temp dir");
        let ctx = runtime.block_on(async {
            let (directory, store) = common::directory_and_store(dir.path()).await;
            let limits = Limits {
                command_timeout: Duration::from_millis(50),
                data_timeout: Duration::from_millis(50),
                max_message_size: 4096,
                ..Limits::default()
            };
            let local = mailstead_queue::LocalDelivery::new(
                &store,
                mailstead_store::MailStore::new(&store),
                mailstead_queue::LocalConfig::default(),
            );
            Arc::new(SmtpContext {
                directory,
                store,
                local,
                hostname: "mx.example.com".into(),
                tls: None,
                limits,
                mode: Mode::Smtp,
                queue: None,
                auth: None,
                policy: mailstead_smtp::Policy::default(),
            })
        });
        Fixture {
            runtime,
            ctx,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let data = data.to_vec();
    fixture.runtime.block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let session = tokio::spawn(mailstead_smtp::serve_stream(
            server,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Arc::clone(&fixture.ctx),
        ));
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = client.write_all(&data).await;
            let _ = client.shutdown().await;
            let _ = client.read_to_end(&mut sink).await;
        });
        let _ = session.await;
        let _ = reader.await;
    });
});
