//! The software Mailstead replaces, on the same data: a standalone Dovecot 2.3 whose auth
//! service answers from the benchmark's MariaDB database through MUM's `password_query` and
//! `user_query` (shared/seeds/000), driven over its auth sockets:
//!
//! - `auth-userdb`: `USER` (userdb lookup, what Dovecot LMTP asks per recipient);
//! - `auth-master`: `PASS` (passdb lookup without a password, what `doveadm auth lookup` does;
//!   Dovecot refuses it on auth-userdb);
//! - `auth-client`: `AUTH PLAIN` (a login with its password: lookup plus hash verification,
//!   what Postfix SASL and the IMAP login process ask).
//!
//! Wire format (Dovecot's auth protocols): LF-terminated lines of TAB-separated fields. Master:
//! the client sends `VERSION\t1\t0`, the server `VERSION` and `SPID`; then
//! `USER\t<id>\t<user>\tservice=lmtp` → `USER\t<id>\t<user>\t<fields>` | `NOTFOUND\t<id>` |
//! `FAIL\t<id>…`, and `PASS\t<id>\t<user>\tservice=imap` → `PASS\t<id>\tuser=…` | `NOTFOUND` |
//! `FAIL`. Client: `VERSION\t1\t2` + `CPID\t<n>`, the server's `MECH`… lines end with `DONE`;
//! then `AUTH\t<id>\tPLAIN\tservice=imap\tnologin\tsecured\tresp=<base64 \0user\0password>` →
//! `OK\t<id>…` | `FAIL\t<id>…`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::dataset::{Key, Kind, PASSWORD};
use crate::harness::Worker;

const DOVECOT: &str = "/usr/sbin/dovecot";
const DOVEADM: &str = "/usr/bin/doveadm";

/// MUM's queries, verbatim from shared/seeds/000 (its "Dovecot SQL File").
const PASSWORD_QUERY: &str = "SELECT mailboxes.local_part AS username, domains.domain, mailboxes.password FROM mailboxes INNER JOIN domains ON mailboxes.domain_id = domains.id WHERE mailboxes.local_part = '%n' AND domains.domain = '%d' AND domains.active = 1 AND mailboxes.active = 1;";
const USER_QUERY: &str = "SELECT mailboxes.homedir AS home, mailboxes.maildir AS mail, CONCAT('*:storage=', COALESCE(mailboxes.quota, domains.quota, 0), 'G') AS quota_rule FROM mailboxes INNER JOIN domains ON mailboxes.domain_id = domains.id WHERE mailboxes.local_part = '%n' AND domains.domain = '%d' AND domains.active = 1 AND mailboxes.active = 1 AND mailboxes.send_only = 0;";

/// `dovecot --version`.
pub fn version() -> Result<String> {
    let output = Command::new(DOVECOT)
        .arg("--version")
        .output()
        .context("running dovecot --version")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A running Dovecot master (and its auth processes), stopped on drop.
pub struct Dovecot {
    conf: PathBuf,
    run_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Dovecot {
    /// Starts Dovecot on database `dbname` with the auth cache on (`auth_cache_size = 10M`) or
    /// off (`auth_cache_size = 0`), and waits until its auth-userdb socket answers.
    pub async fn start(dbname: &str, cache: bool) -> Result<Dovecot> {
        if !Path::new("/usr/lib/dovecot/modules/libdriver_mysql.so").exists() {
            bail!("Dovecot's MySQL driver is missing: apt-get install dovecot-mysql");
        }
        let dir = tempfile::Builder::new()
            .prefix("mstbench-dovecot-")
            .tempdir()?;
        // The auth processes run as the `dovecot` user and must read the SQL file.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        let d = dir.path().display().to_string();
        let sql = format!(
            "driver = mysql\n\
             connect = \"host=127.0.0.1 dbname={dbname} user=root\"\n\
             default_pass_scheme = BLF-CRYPT\n\
             password_query = {PASSWORD_QUERY}\n\
             user_query = {USER_QUERY}\n"
        );
        fs::write(dir.path().join("dovecot-sql.conf"), sql)?;
        let cache_settings = if cache {
            "auth_cache_size = 10M\nauth_cache_ttl = 1 hour\nauth_cache_negative_ttl = 1 hour\n"
        } else {
            "auth_cache_size = 0\n"
        };
        // No protocol (no IMAP/LMTP/POP3 listeners): only the auth service's unix sockets.
        let conf = format!(
            "base_dir = {d}/run\n\
             state_dir = {d}/state\n\
             instance_name = mstbench\n\
             log_path = {d}/dovecot.log\n\
             protocols =\n\
             ssl = no\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain\n\
             {cache_settings}\
             passdb {{\n  driver = sql\n  args = {d}/dovecot-sql.conf\n}}\n\
             userdb {{\n  driver = sql\n  args = {d}/dovecot-sql.conf\n}}\n\
             service auth {{\n\
             \x20 unix_listener auth-userdb {{\n    mode = 0666\n  }}\n\
             \x20 unix_listener auth-master {{\n    mode = 0600\n  }}\n\
             \x20 unix_listener auth-client {{\n    mode = 0600\n  }}\n\
             }}\n"
        );
        let conf_path = dir.path().join("dovecot.conf");
        fs::write(&conf_path, conf)?;
        fs::create_dir_all(dir.path().join("state"))?;
        let log = dir.path().join("dovecot.log");
        let stdio = fs::File::create(dir.path().join("stdio.log"))?;
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(stdio.try_clone()?)
            .stderr(stdio)
            .spawn()
            .context("starting dovecot")?;
        let dovecot = Dovecot {
            conf: conf_path,
            run_dir: dir.path().join("run"),
            log,
            child: Some(child),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut conn) = dovecot.userdb().await
                && conn
                    .request("USER", "nobody@nowhere.invalid", "lmtp")
                    .await
                    .is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "dovecot did not answer on {} within 15 s; its log:\n{}",
                    dovecot.run_dir.join("auth-userdb").display(),
                    dovecot.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(dovecot)
    }

    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Errors Dovecot logged (none expected).
    pub fn logged_errors(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("Error:") || line.contains("Fatal:"))
            .map(str::to_owned)
            .collect()
    }

    /// The auth-userdb socket: the master protocol, userdb lookups only (what LMTP uses).
    pub async fn userdb(&self) -> Result<MasterConn> {
        MasterConn::connect(&self.run_dir.join("auth-userdb")).await
    }

    /// The auth-master socket: the master protocol with passdb lookups allowed.
    pub async fn master(&self) -> Result<MasterConn> {
        MasterConn::connect(&self.run_dir.join("auth-master")).await
    }

    pub async fn client(&self, cpid: u32) -> Result<ClientConn> {
        ClientConn::connect(&self.run_dir.join("auth-client"), cpid).await
    }

    /// `doveadm stop`, then waits for the master to exit (kills it after 10 s).
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new(DOVEADM)
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill()?;
        child.wait()?;
        bail!("dovecot did not stop within 10 s; killed")
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

struct Lines {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    line: String,
}

impl Lines {
    async fn connect(path: &Path) -> Result<Lines> {
        let stream = UnixStream::connect(path)
            .await
            .with_context(|| format!("connecting to {}", path.display()))?;
        let (read, writer) = stream.into_split();
        Ok(Lines {
            reader: BufReader::new(read),
            writer,
            line: String::new(),
        })
    }

    async fn send(&mut self, text: &str) -> Result<()> {
        self.writer.write_all(text.as_bytes()).await?;
        Ok(())
    }

    /// The next line, without its LF.
    async fn next(&mut self) -> Result<&str> {
        self.line.clear();
        if self.reader.read_line(&mut self.line).await? == 0 {
            bail!("dovecot closed the connection");
        }
        Ok(self.line.trim_end_matches('\n'))
    }

    /// Reads lines until the reply to request `id` (the second field).
    async fn reply_to(&mut self, id: u32) -> Result<&str> {
        let id = id.to_string();
        loop {
            let line = self.next().await?;
            if line.split('\t').nth(1) == Some(id.as_str()) {
                break;
            }
        }
        Ok(self.line.trim_end_matches('\n'))
    }
}

/// A connection speaking the master protocol (auth-userdb or auth-master socket).
pub struct MasterConn {
    lines: Lines,
    next_id: u32,
}

impl MasterConn {
    async fn connect(path: &Path) -> Result<MasterConn> {
        let mut lines = Lines::connect(path).await?;
        lines.send("VERSION\t1\t0\n").await?;
        loop {
            let line = lines.next().await?;
            if line.starts_with("SPID\t") {
                break;
            }
            if !line.starts_with("VERSION\t") {
                bail!("unexpected auth-master handshake line {line:?}");
            }
        }
        Ok(MasterConn { lines, next_id: 0 })
    }

    /// `USER` or `PASS` for `user`; returns the reply line.
    pub async fn request(&mut self, command: &str, user: &str, service: &str) -> Result<&str> {
        self.next_id += 1;
        let id = self.next_id;
        self.lines
            .send(&format!("{command}\t{id}\t{user}\tservice={service}\n"))
            .await?;
        self.lines.reply_to(id).await
    }
}

/// A connection to the auth-client socket.
pub struct ClientConn {
    lines: Lines,
    next_id: u32,
}

impl ClientConn {
    async fn connect(path: &Path, cpid: u32) -> Result<ClientConn> {
        let mut lines = Lines::connect(path).await?;
        lines
            .send(&format!("VERSION\t1\t2\nCPID\t{cpid}\n"))
            .await?;
        while lines.next().await? != "DONE" {}
        Ok(ClientConn { lines, next_id: 0 })
    }

    /// `AUTH PLAIN`: true for `OK`, false for `FAIL`.
    pub async fn auth_plain(&mut self, user: &str, password: &str) -> Result<bool> {
        self.next_id += 1;
        let id = self.next_id;
        let response =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        self.lines
            .send(&format!(
                "AUTH\t{id}\tPLAIN\tservice=imap\tnologin\tsecured\tresp={response}\n"
            ))
            .await?;
        let reply = self.lines.reply_to(id).await?;
        if reply.starts_with("OK\t") {
            Ok(true)
        } else if reply.starts_with("FAIL\t") {
            Ok(false)
        } else {
            bail!("unexpected AUTH reply {reply:?}")
        }
    }
}

/// userdb lookup: `USER` on auth-userdb.
pub struct UserLookup(pub MasterConn);

impl Worker for UserLookup {
    async fn call(&mut self, key: &Key) -> Result<bool> {
        let reply = self.0.request("USER", &key.addr, "lmtp").await?;
        if reply.starts_with("FAIL\t") {
            bail!("dovecot userdb lookup failed: {reply:?}");
        }
        // MUM's user_query knows mailboxes only; aliases are Postfix's job in that stack.
        Ok(reply.starts_with("USER\t") == (key.kind == Kind::Mailbox))
    }
}

/// passdb lookup without password: `PASS` on auth-master.
pub struct PassLookup(pub MasterConn);

impl Worker for PassLookup {
    async fn call(&mut self, key: &Key) -> Result<bool> {
        let reply = self.0.request("PASS", &key.addr, "imap").await?;
        if reply.starts_with("FAIL\t") {
            bail!("dovecot passdb lookup failed: {reply:?}");
        }
        Ok(reply.starts_with("PASS\t") == (key.kind == Kind::Mailbox))
    }
}

/// A login with the password: `AUTH PLAIN` on auth-client.
pub struct AuthPlain(pub ClientConn);

impl Worker for AuthPlain {
    async fn call(&mut self, key: &Key) -> Result<bool> {
        self.0.auth_plain(&key.addr, PASSWORD).await
    }
}
