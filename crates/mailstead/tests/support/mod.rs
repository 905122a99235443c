//! Helpers shared by the end-to-end tests that run the real `mailstead` binary.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

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

/// Fails the test, with a hint, when a required program is missing.
pub fn require(program: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .env(
            "PATH",
            format!(
                "{}:/usr/sbin:/sbin",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(
        found,
        "{program} is missing: install {package} (scripts/test-services.sh does)"
    );
}

/// Waits until `port` greets with a line starting with `greeting` (plain IMAP, SMTP, LMTP).
pub fn wait_for_greeting(port: u16, greeting: &str, what: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_ok() && line.starts_with(greeting) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not greet on port {port}; log:\n{}",
            log()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Lets the account `serve` drops to (it starts as root) reach `path`: every directory from
/// the system's temporary directory down to it gets o+x (tempfile makes them 0700).
pub fn reachable_by_server(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;

    let temp = std::env::temp_dir();
    for ancestor in path.ancestors() {
        if !ancestor.starts_with(&temp) || ancestor == temp {
            break;
        }
        let Ok(metadata) = std::fs::metadata(ancestor) else {
            continue;
        };
        if metadata.is_dir() {
            let mode = metadata.permissions().mode() | 0o711;
            std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// Runs the Python helper `script` (a path below this crate, e.g. `tests/http/http_tool.py`)
/// with `args` and parses the JSON it prints; a failed run or no JSON fails the test.
pub fn python_json(script: &str, args: &[&str]) -> serde_json::Value {
    require("python3", "python3");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let output = Command::new("python3")
        .arg("-u")
        .arg(&script)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let printed = || {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    assert!(
        output.status.success(),
        "{} {args:?}: {}",
        script.display(),
        printed()
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "{} printed no JSON ({err}): {}",
            script.display(),
            printed()
        )
    })
}

/// The value of the sample `series` (name and labels as written) in a Prometheus text.
pub fn prometheus_sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    })
}

/// Postfix's smtp-sink on a free port, appending every message to one dump file.
pub struct SmtpSink {
    pub port: u16,
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// `options`: smtp-sink's, e.g. `["-f", "RCPT"]` (5xx to every RCPT), `["-r", "RCPT"]` (4xx).
    pub fn start(options: &[&str]) -> SmtpSink {
        SmtpSink::start_on(free_port(), options)
    }

    pub fn start_on(port: u16, options: &[&str]) -> SmtpSink {
        require("smtp-sink", "postfix");
        let dir = tempfile::tempdir().unwrap();
        // smtp-sink drops to `nobody`, which writes the dump.
        std::fs::set_permissions(
            dir.path(),
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o777),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/smtp-sink")
            .args(["-u", "nobody", "-D"])
            .arg(dir.path().join("dump"))
            .args(options)
            .arg(format!("127.0.0.1:{port}"))
            .arg("100")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let sink = SmtpSink { port, child, dir };
        wait_for_greeting(port, "220", "smtp-sink", String::new);
        sink
    }

    pub fn dump(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dump")).unwrap_or_default()
    }

    /// Waits until the dump holds `count` copies of `needle`.
    pub fn wait_for(&self, needle: &str, count: usize, log: impl Fn() -> String) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let dump = self.dump();
            if dump.matches(needle).count() >= count {
                return dump;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} did not reach the sink {count} times; dump:\n{dump}\nserver log:\n{}",
                log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
