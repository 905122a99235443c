//! The HTTP listener end to end: `mailstead serve` answering real clients (Python's
//! http.client, xml.etree, smtplib and imaplib, and raw sockets for what no polite client
//! sends): health and readiness (a PostgreSQL database that stops taking connections makes
//! the server not ready), metrics counting a real SMTP delivery and logins, Thunderbird and
//! Outlook autoconfiguration, the MTA-STS policy, unknown domains, oversized headers, a
//! slowloris client, and HTTPS off loopback.
//!
//! Needs `python3` and, for readiness, the PostgreSQL server at `MAILSTEAD_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`) with `psql`; it fails, never skips,
//! when one is missing.

#![allow(clippy::unwrap_used)]

#[path = "imap/harness.rs"]
mod harness;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use harness::{BIN, DOMAIN, Mailstead, PASSWORD, both};
use serde_json::Value;

/// Runs `http_tool.py` and parses what it prints.
fn tool(args: &[&str]) -> Value {
    support::python_json("tests/http/http_tool.py", args)
}

fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

fn get(port: u16, path: &str) -> Value {
    tool(&["get", &url(port, path)])
}

/// The value of the sample `series` (name and labels as written) in a Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    support::prometheus_sample(text, series)
}

fn metrics(port: u16) -> String {
    let answer = get(port, "/metrics");
    assert_eq!(answer["status"], 200, "{answer}");
    assert!(
        answer["content_type"]
            .as_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{answer}"
    );
    answer["body"].as_str().unwrap().to_owned()
}

/// Reads from `stream` until the server closes it; `Err` if it is still open after `limit`
/// (the test's bound against a hang, not a timing assertion).
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, Vec<u8>> {
    let deadline = Instant::now() + limit;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(received),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            // A reset closes it too.
            Err(_) => return Ok(received),
        }
        if Instant::now() > deadline {
            return Err(received);
        }
    }
}

#[test]
fn health_metrics_autoconfig_and_limits() {
    let temp = tempfile::tempdir().unwrap();
    let user = format!("user1@{DOMAIN}");
    let mailstead = Mailstead::start(
        temp.path(),
        std::slice::from_ref(&user),
        "login_on_loopback_without_tls = true\n",
        // Keys of [http]: a short timeout, so the slowloris client is cut off soon.
        "request_timeout = \"2s\"\n",
    );
    let port = mailstead.http_port;

    // Alive and ready.
    let health = get(port, "/healthz");
    assert_eq!(health["status"], 200, "{health}");
    let ready = get(port, "/readyz");
    assert_eq!(ready["status"], 200, "{ready}");
    let body: Value = serde_json::from_str(ready["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["ready"], true, "{body}");

    // A real SMTP delivery and a failed IMAP login are counted.
    let before = metrics(port);
    assert_eq!(
        sample(
            &before,
            "mailstead_messages_received_total{protocol=\"smtp\"}"
        ),
        Some(0.0),
        "{before}"
    );
    let sent = tool(&["smtp", &mailstead.smtp_port.to_string(), &user]);
    assert_eq!(sent["refused"], serde_json::json!([]), "{sent}");
    let failed = tool(&[
        "imap_login",
        &mailstead.imap_port.to_string(),
        &user,
        "not-the-password",
    ]);
    assert_eq!(failed["accepted"], false, "{failed}");
    // A session that stays logged in, on a connection that stays open.
    let imap = TcpStream::connect(("127.0.0.1", mailstead.imap_port)).unwrap();
    imap.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut imap_reader = BufReader::new(imap.try_clone().unwrap());
    let mut line = String::new();
    imap_reader.read_line(&mut line).unwrap();
    (&imap)
        .write_all(format!("a LOGIN {user} {PASSWORD}\r\n").as_bytes())
        .unwrap();
    loop {
        line.clear();
        imap_reader.read_line(&mut line).unwrap();
        if line.starts_with("a ") {
            assert!(line.starts_with("a OK"), "{line}");
            break;
        }
    }
    let after = metrics(port);
    for (series, expected) in [
        ("mailstead_messages_received_total{protocol=\"smtp\"}", 1.0),
        ("mailstead_messages_delivered_total", 1.0),
        ("mailstead_delivery_latency_seconds_count", 1.0),
        (
            "mailstead_delivery_latency_seconds_bucket{le=\"+Inf\"}",
            1.0,
        ),
        (
            "mailstead_logins_total{protocol=\"imap\",result=\"failed\"}",
            1.0,
        ),
        (
            "mailstead_logins_total{protocol=\"imap\",result=\"ok\"}",
            1.0,
        ),
        ("mailstead_sessions_logged_in{protocol=\"imap\"}", 1.0),
        (
            &format!(
                "mailstead_connections_open{{protocol=\"imap\",address=\"127.0.0.1:{}\"}}",
                mailstead.imap_port
            ),
            1.0,
        ),
        ("mailstead_queue_messages", 0.0),
    ] {
        assert_eq!(
            sample(&after, series),
            Some(expected),
            "{series} in:\n{after}"
        );
    }
    assert!(
        sample(&after, "mailstead_directory_cache_misses_total").is_some_and(|n| n >= 1.0),
        "{after}"
    );
    drop(imap_reader);
    drop(imap);

    // Thunderbird: the listeners' ports, implicit TLS first; the host the request went to
    // names the domain when no address is given.
    for (path, host) in [
        (
            format!("/mail/config-v1.1.xml?emailaddress={user}"),
            "127.0.0.1".to_owned(),
        ),
        (
            "/.well-known/autoconfig/mail/config-v1.1.xml".to_owned(),
            format!("autoconfig.{DOMAIN}"),
        ),
    ] {
        let config = tool(&["thunderbird", &url(port, &path), &host]);
        assert_eq!(config["status"], 200, "{config}");
        assert_eq!(config["version"], "1.1");
        assert_eq!(config["domain"], DOMAIN);
        let servers: Vec<(String, u64, String)> = config["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|server| {
                assert_eq!(server["hostname"], "mail.example.test", "{server}");
                assert_eq!(server["username"], "%EMAILADDRESS%", "{server}");
                (
                    server["type"].as_str().unwrap().to_owned(),
                    server["port"].as_u64().unwrap(),
                    server["socketType"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            servers,
            [
                (
                    "imap".to_owned(),
                    u64::from(mailstead.imaps_port),
                    "SSL".to_owned()
                ),
                (
                    "imap".to_owned(),
                    u64::from(mailstead.imap_port),
                    "STARTTLS".to_owned()
                ),
                (
                    "pop3".to_owned(),
                    u64::from(mailstead.pop3_port),
                    "STARTTLS".to_owned()
                ),
            ],
            "{config}"
        );
    }
    let unknown = get(
        port,
        "/mail/config-v1.1.xml?emailaddress=someone@unknown.test",
    );
    assert_eq!(unknown["status"], 404, "{unknown}");
    let unknown = get(port, "/mail/config-v1.1.xml?emailaddress=%3Cscript%3E");
    assert_eq!(unknown["status"], 404, "{unknown}");

    // Outlook: the address comes back (escaped), the preferred port of each service.
    let autodiscover = url(port, "/autodiscover/autodiscover.xml");
    let answer = tool(&["outlook", &autodiscover, &user.to_uppercase()]);
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["action"], "settings");
    let protocols = answer["protocols"].as_array().unwrap();
    assert_eq!(protocols.len(), 2, "{answer}");
    assert_eq!(protocols[0]["Type"], "IMAP");
    assert_eq!(protocols[0]["Server"], "mail.example.test");
    assert_eq!(protocols[0]["Port"], mailstead.imaps_port.to_string());
    assert_eq!(protocols[0]["Encryption"], "SSL");
    assert_eq!(protocols[0]["LoginName"], user, "the normalised address");
    assert_eq!(protocols[1]["Type"], "POP3");
    assert_eq!(protocols[1]["Encryption"], "TLS", "STARTTLS");
    let unknown = tool(&["outlook", &autodiscover, "someone@unknown.test"]);
    assert_eq!(unknown["status"], 404, "{unknown}");
    let hostile = tool(&["outlook", &autodiscover, "<x>\"&@example.test"]);
    assert_eq!(hostile["status"], 404, "{hostile}");
    let garbage = tool(&["outlook_raw", &autodiscover, "<Autodiscover><Request>"]);
    assert_eq!(garbage["status"], 400, "{garbage}");

    // MTA-STS, asked at mta-sts.<domain>.
    let policy = tool(&[
        "get",
        &url(port, "/.well-known/mta-sts.txt"),
        &format!("mta-sts.{DOMAIN}"),
    ]);
    assert_eq!(policy["status"], 200, "{policy}");
    assert_eq!(
        policy["body"],
        "version: STSv1\r\nmode: testing\r\nmx: mail.example.test\r\nmax_age: 604800\r\n"
    );
    let policy = tool(&[
        "get",
        &url(port, "/.well-known/mta-sts.txt"),
        "mta-sts.unknown.test",
    ]);
    assert_eq!(policy["status"], 404, "{policy}");

    // Headers over the limit: 431, and the connection is closed, not left hanging.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let big = "x".repeat(16 * 1024);
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n").as_bytes())
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(60))
        .expect("the connection stays open after an oversized head");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "expected 431, got {answer:?}"
    );

    // Slowloris: a head that never ends, one header line at a time, is cut off. The client
    // keeps sending for up to a minute; the server (request_timeout 2s) must close first.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut closed = false;
    for n in 0..120 {
        if stream
            .write_all(format!("X-{n}: y\r\n").as_bytes())
            .is_err()
        {
            closed = true;
            break;
        }
        let mut buffer = [0u8; 1024];
        match stream.read(&mut buffer) {
            Ok(_) => {
                // An answer (408) or the end: either way the server gave up on the head.
                closed = true;
                break;
            }
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "a slowloris client was never cut off");
    // The server still answers everyone else.
    assert_eq!(get(port, "/healthz")["status"], 200);
}

/// A database created for one test on the PostgreSQL server, dropped at the end.
struct PostgresDatabase {
    server: String,
    name: String,
}

impl PostgresDatabase {
    fn create() -> PostgresDatabase {
        support::require("psql", "postgresql-client");
        let server = std::env::var("MAILSTEAD_TEST_POSTGRES_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let name = format!(
            "mst_http_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let database = PostgresDatabase { server, name };
        database.psql(&format!("CREATE DATABASE {}", database.name));
        database
    }

    fn url(&self) -> String {
        let (base, _) = self.server.rsplit_once('/').unwrap();
        format!("{base}/{}", self.name)
    }

    fn psql(&self, sql: &str) {
        let output = Command::new("psql")
            .arg(&self.server)
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "psql {sql}: {} (is PostgreSQL running? scripts/test-services.sh starts it)",
            both(&output)
        );
    }

    /// No new connections, and the open ones cut: the database is gone for the server.
    fn take_away(&self) {
        self.psql(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            self.name
        ));
        self.psql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            self.name
        ));
    }

    fn give_back(&self) {
        self.psql(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            self.name
        ));
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.server)
            .args([
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .stdin(Stdio::null())
            .output();
    }
}

/// Polls `/readyz` until it answers `status` (the pool notices a lost database on its next
/// query); panics with the last answer if it never does.
fn wait_for_readiness(port: u16, status: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = get(port, "/readyz");
        if answer["status"] == status {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never answered {status}; last: {answer}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn readyz_is_503_while_the_database_is_gone() {
    let database = PostgresDatabase::create();
    let temp = tempfile::tempdir().unwrap();
    let user = format!("user1@{DOMAIN}");
    // A new PostgreSQL database gets its schema from `db migrate` (SQLite's at first use).
    let migrate = temp.path().join("migrate.toml");
    std::fs::write(
        &migrate,
        format!("[directory]\nurl = \"{}\"\n", database.url()),
    )
    .unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&migrate)
        .args(["db", "migrate"])
        .env_remove("MAILSTEAD_CONFIG");
    support::run_ok(command, "mailstead db migrate", None);
    let mailstead = Mailstead::start(
        temp.path(),
        std::slice::from_ref(&user),
        "",
        &format!("\n[directory]\nurl = \"{}\"\n", database.url()),
    );
    let port = mailstead.http_port;
    wait_for_readiness(port, 200);

    database.take_away();
    let answer = wait_for_readiness(port, 503);
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(
        body["not_ready"],
        serde_json::json!(["directory"]),
        "{body}"
    );
    // Alive all the same, and an autoconfig request says "try later", not "unknown".
    assert_eq!(get(port, "/healthz")["status"], 200);
    let config = get(port, &format!("/mail/config-v1.1.xml?emailaddress={user}"));
    assert_eq!(config["status"], 503, "{config}");

    database.give_back();
    wait_for_readiness(port, 200);
}

/// `serve` with only an HTTP listener on `address`, in `dir`.
fn serve_http_only(dir: &Path, address: &str) -> Child {
    support::reachable_by_server(dir);
    let config = dir.join("mailstead.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nhostname = \"mail.example.test\"\ndata_dir = \"{}\"\n\
             [smtp]\nlisten = []\n[lmtp]\nlisten = []\n[imap]\nlisten = []\nlisten_tls = []\n\
             [pop3]\nlisten = []\nlisten_tls = []\n[managesieve]\nlisten = []\n[submission]\nlisten = []\nlisten_tls = []\n\
             [http]\nlisten = [\"{address}\"]\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("MAILSTEAD_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

#[test]
fn off_loopback_it_is_https_with_the_servers_certificate() {
    let temp = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let mut child = serve_http_only(temp.path(), &format!("0.0.0.0:{port}"));
    let log = || std::fs::read_to_string(temp.path().join("serve.log")).unwrap_or_default();
    harness::wait_for_listener(port, "mailstead http", log);

    let cert = temp.path().join("data/tls/cert.pem");
    let answer = tool(&[
        "https",
        &format!("https://127.0.0.1:{port}/healthz"),
        cert.to_str().unwrap(),
    ]);
    assert_eq!(answer["status"], 200, "{answer}");

    // Plain HTTP gets no answer there: the bytes are not a TLS hello.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let received = read_until_closed(&mut stream, Duration::from_secs(60))
        .expect("a plain request on the HTTPS port is closed");
    assert!(
        !String::from_utf8_lossy(&received).contains("HTTP/1.1 200"),
        "{received:?}"
    );

    let _ = child.kill();
    let _ = child.wait();
}
