//! Peers for the outbound client's tests: a DNS responder, Postfix's smtp-sink, a Postfix
//! smtpd with STARTTLS, a test CA, and a small server that checks AUTH.

#![allow(dead_code, clippy::unwrap_used)]

pub mod auth_sink;
pub mod dns;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mailstead_queue::outbound::{OutboundConfig, OutboundRecipient};
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

/// A TCP port on 127.0.0.1 that is free now, below the ephemeral range (where outgoing
/// connections draw their local ports), spread apart between concurrent tests.
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

pub fn require(program: &str, package: &str) {
    assert!(
        Path::new(program).exists(),
        "{program} is missing: install {package} (scripts/test-services.sh does)"
    );
}

/// Waits until `port` greets with a line starting with `greeting`.
pub fn wait_for_greeting(port: u16, greeting: &str, what: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_ok() && line.starts_with(greeting) {
                let _ = std::io::Write::write_all(&mut &stream, b"QUIT\r\n");
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

/// A configuration for tests: DNS from `dns`, MX hosts on `smtp_port`, short timeouts.
pub fn config(dns: &dns::DnsServer, smtp_port: u16) -> OutboundConfig {
    OutboundConfig {
        hostname: "client.test".to_owned(),
        name_servers: vec![dns.addr],
        trust_ad_bit: true,
        relay_host: None,
        relay_auth: None,
        extra_roots: Vec::new(),
        smtp_port,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(20),
        max_connections_per_destination: 5,
        max_connections: 20,
        idle_connection_time: Duration::from_secs(1),
    }
}

pub fn recipients(addresses: &[&str]) -> Vec<OutboundRecipient> {
    addresses
        .iter()
        .map(|address| OutboundRecipient {
            address: (*address).to_owned(),
            notify: None,
            orcpt: None,
        })
        .collect()
}

pub const MESSAGE: &[u8] =
    b"From: a@client.test\r\nTo: b@x.test\r\nSubject: outbound test\r\n\r\nHello.\r\n.leading dot\r\n";

/// Postfix's smtp-sink on a free port, counting sessions (`-c`) and dumping every message.
pub struct Sink {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Sink {
    pub fn start(options: &[&str]) -> Sink {
        require("/usr/sbin/smtp-sink", "postfix");
        let dir = tempfile::tempdir().unwrap();
        // smtp-sink drops to `nobody`, which writes the dump.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let port = free_port();
        let out = fs::File::create(dir.path().join("out")).unwrap();
        let child = Command::new("/usr/sbin/smtp-sink")
            .args(["-u", "nobody", "-c", "-D"])
            .arg(dir.path().join("dump"))
            .args(options)
            .arg(format!("127.0.0.1:{port}"))
            .arg("64")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let sink = Sink { port, child, dir };
        wait_for_greeting(port, "220", "smtp-sink", || sink.output());
        // The probe above was a session too; wait for it to be counted, so tests can count
        // theirs from here.
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.sessions() < 1 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        sink
    }

    /// Every message received, with smtp-sink's `X-Mail-Args:`/`X-Rcpt-Args:` headers.
    pub fn dump(&self) -> String {
        fs::read_to_string(self.dir.path().join("dump")).unwrap_or_default()
    }

    pub fn output(&self) -> String {
        fs::read_to_string(self.dir.path().join("out")).unwrap_or_default()
    }

    /// Sessions ended so far (the last `sess=` counter), the start-up probe included.
    pub fn sessions(&self) -> u32 {
        self.counter("sess=")
    }

    pub fn messages(&self) -> u32 {
        self.counter("mesg=")
    }

    fn counter(&self, name: &str) -> u32 {
        let output = self.output();
        output
            .rsplit(['\r', '\n'])
            .find_map(|line| {
                let at = line.find(name)?;
                line[at + name.len()..]
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA and a server certificate it signed.
pub struct TestCa {
    pub ca_der: CertificateDer<'static>,
    pub ca_pem: String,
    pub leaf_der: CertificateDer<'static>,
    pub leaf_pem: String,
    pub leaf_key_pem: String,
    pub leaf_key_der: Vec<u8>,
    /// The leaf's SubjectPublicKeyInfo.
    pub leaf_spki: Vec<u8>,
}

impl TestCa {
    pub fn new(names: &[&str]) -> TestCa {
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Mailstead test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut leaf_params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        TestCa {
            ca_der: ca.der().clone(),
            ca_pem: ca.pem(),
            leaf_der: leaf.der().clone(),
            leaf_pem: leaf.pem(),
            leaf_key_pem: leaf_key.serialize_pem(),
            leaf_key_der: leaf_key.serialize_der(),
            leaf_spki: rcgen::PublicKeyData::subject_public_key_info(&leaf_key),
        }
    }

    pub fn leaf_sha256(&self) -> Vec<u8> {
        Sha256::digest(self.leaf_der.as_ref()).to_vec()
    }

    pub fn spki_sha256(&self) -> Vec<u8> {
        Sha256::digest(&self.leaf_spki).to_vec()
    }

    pub fn ca_sha256(&self) -> Vec<u8> {
        Sha256::digest(self.ca_der.as_ref()).to_vec()
    }
}

pub fn hex_colons(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A Postfix smtpd on a free port with STARTTLS (the test CA's leaf and the CA as its chain),
/// accepting `user1@` and `user2@` of `domain` (others: 550 5.1.1) and discarding the mail;
/// stopped on drop.
pub struct Postfix {
    pub port: u16,
    conf: PathBuf,
    maillog: PathBuf,
    _dir: tempfile::TempDir,
}

impl Postfix {
    pub fn start(domains: &[&str], ca: &TestCa) -> Postfix {
        let domain = domains[0];
        require("/usr/sbin/postfix", "postfix");
        let dir = tempfile::tempdir().unwrap();
        let root = &dir.path().to_path_buf();
        let conf = root.join("conf");
        let spool = root.join("spool");
        let data = root.join("data");
        let tls = root.join("tls");
        for sub in [&conf, &spool, &data, &tls] {
            fs::create_dir_all(sub).unwrap();
        }
        for sub in [root, &conf, &spool] {
            fs::set_permissions(sub, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let chown = Command::new("chown")
            .arg("postfix:postfix")
            .arg(&data)
            .status()
            .unwrap();
        assert!(chown.success());
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(
            tls.join("chain.pem"),
            format!("{}{}{}", ca.leaf_key_pem, ca.leaf_pem, ca.ca_pem),
        )
        .unwrap();
        fs::set_permissions(tls.join("chain.pem"), fs::Permissions::from_mode(0o600)).unwrap();

        let port = free_port();
        let maillog = root.join("maillog");
        fs::write(
            conf.join("main.cf"),
            format!(
                "compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.{domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
alias_maps =
local_recipient_maps =
local_transport = error:local delivery disabled
virtual_mailbox_domains = {all_domains}
virtual_mailbox_maps = texthash:{conf}/vmailbox
virtual_transport = discard:
smtpd_relay_restrictions = reject_unauth_destination
default_transport = error:outbound delivery disabled
relay_transport = error:outbound delivery disabled
smtpd_tls_security_level = may
smtpd_tls_chain_files = {tls}/chain.pem
smtpd_tls_loglevel = 1
smtpd_tls_session_cache_database =
maillog_file_prefixes = /var, {root}
maillog_file = {maillog}
",
                spool = spool.display(),
                data = data.display(),
                conf = conf.display(),
                tls = tls.display(),
                root = root.display(),
                maillog = maillog.display(),
                all_domains = domains.join(" "),
            ),
        )
        .unwrap();
        fs::write(
            conf.join("vmailbox"),
            domains
                .iter()
                .map(|domain| format!("user1@{domain} ok\nuser2@{domain} ok\n"))
                .collect::<String>(),
        )
        .unwrap();
        fs::write(
            conf.join("master.cf"),
            format!(
                "127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"
            ),
        )
        .unwrap();
        for file in ["main.cf", "master.cf", "vmailbox"] {
            fs::set_permissions(conf.join(file), fs::Permissions::from_mode(0o644)).unwrap();
        }
        let postfix = Postfix {
            port,
            conf: conf.clone(),
            maillog,
            _dir: dir,
        };
        let start_log = root.join("start.log");
        let log_file = fs::File::create(&start_log).unwrap();
        let status = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&conf)
            .arg("start")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "postfix start failed: {}{}",
            fs::read_to_string(&start_log).unwrap_or_default(),
            postfix.maillog()
        );
        wait_for_greeting(port, "220", "postfix", || postfix.maillog());
        postfix
    }

    pub fn maillog(&self) -> String {
        fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// Waits until the log has `needle` at least `count` times (Postfix logs after replying).
    pub fn wait_for_log(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let log = self.maillog();
            if log.matches(needle).count() >= count || Instant::now() > deadline {
                return log;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let pid = fs::read_to_string(self.conf.join("../spool/pid/master.pid"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        if pid.is_empty() {
            return;
        }
        let process = PathBuf::from("/proc").join(pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        while process.exists() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
    }
}
