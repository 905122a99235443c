//! Helpers shared by the end-to-end tests that run the real `mailstead` binary.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `command` with `stdin` piped in (as a script would give it), or none; captures output.
pub fn run(mut command: Command, stdin: Option<&str>) -> Output {
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// [`run`], and fail the test with both output streams unless it succeeded.
pub fn run_ok(command: Command, what: &str, stdin: Option<&str>) -> Output {
    let output = run(command, stdin);
    assert!(
        output.status.success(),
        "{what}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A TCP port on 127.0.0.1 that is free now, for a server the test starts as a child process.
///
/// Not a kernel-chosen port (`bind(":0")`): those come from the ephemeral range, where every
/// outgoing connection (Postfix, the database clients) also draws its local port, so one may
/// take it between our check and the child's bind. Ports below the ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`, 32768 upwards here) are only ever taken by
/// listeners; a per-process counter spreads concurrent tests apart.
pub fn free_port() -> u16 {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU16, Ordering};

    const FIRST: u16 = 20_000;
    const SPAN: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % u32::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FIRST + (start.wrapping_add(offset.wrapping_mul(7)) % SPAN);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {FIRST} and {}", FIRST + SPAN);
}
