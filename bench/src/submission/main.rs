//! `submission-bench`: a load generator for mail submission (RFC 6409) with STARTTLS and
//! AUTH PLAIN, run by `bench/submission.sh` against Mailstead and against Postfix (Dovecot
//! SASL), each relaying to one `smtp-sink`. It sends MESSAGES copies of one 4 KiB message
//! from N clients and waits until the sink has dumped every one of them; it prints one JSON
//! line: the submission-side and end-to-end rates, per-message latency, the server's peak
//! RSS and PSS over the run and the CPU time it (and the sink) used. See bench/README.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

#[path = "../proctree.rs"]
mod proctree;
use proctree::{clock_ticks, tree_cpu_ticks, tree_memory_kib};

/// How long one SMTP reply may take before the run is declared broken.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Every message in its own session: connect, EHLO, STARTTLS, EHLO, AUTH PLAIN, MAIL,
    /// RCPT, DATA, QUIT.
    Reconnect,
    /// One session per client (STARTTLS and AUTH once), then RSET, MAIL, RCPT, DATA per
    /// message.
    Stay,
}

#[derive(Parser, Debug)]
#[command(about = "Submission load generator: STARTTLS + AUTH PLAIN, counted at an smtp-sink")]
struct Args {
    /// The submission listener (STARTTLS), host:port
    #[arg(long)]
    addr: String,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    /// MAIL FROM and the From: header
    #[arg(long)]
    from: String,
    /// The one recipient (outside the hosted domains)
    #[arg(long)]
    to: String,
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    #[arg(long, default_value_t = 20)]
    clients: usize,
    #[arg(long, value_enum)]
    mode: Mode,
    /// Size of the message on the wire (headers and body), bytes
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// The directory smtp-sink dumps each message into (`-d DIR/%M.`); the run ends when
    /// MESSAGES more files are in it than at the start
    #[arg(long)]
    sink_dir: PathBuf,
    /// Seconds to wait for the sink before giving up
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Root processes of the server (their trees are summed) for peak RSS and CPU time
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// The sink's process, for its CPU time
    #[arg(long)]
    sink_pid: Option<u32>,
    /// Name of the server in the output
    #[arg(long)]
    label: String,
    /// Client source addresses: 0 connects from the default (127.0.0.1), N > 0 binds client
    /// i to 127.0.0.(10 + i % N), so N addresses share the clients
    #[arg(long, default_value_t = 0)]
    sources: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.clients > 0 && args.messages > 0,
        "--clients and --messages must be positive"
    );
    let tls = Arc::new(client_config());
    // The sink's headers (X-Client-Addr, X-Mail-Args, its Received:, ...) come to more than
    // 200 bytes, the server's own Received: to more.
    let min_len = args.size as u64 + 200;
    let start_files = count_files(&args.sink_dir, 0)?;
    let cpu_before = args
        .server_pids
        .iter()
        .map(|&pid| tree_cpu_ticks(pid))
        .sum::<u64>();
    let sink_cpu_before = args.sink_pid.map(tree_cpu_ticks).unwrap_or(0);

    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).context("histogram")?,
    ));
    let done = Arc::new(AtomicBool::new(false));
    let peak_rss = Arc::new(AtomicUsize::new(0));
    let peak_pss = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (pids, done, peak, peak_pss) = (
            args.server_pids.clone(),
            done.clone(),
            peak_rss.clone(),
            peak_pss.clone(),
        );
        // A thread of its own, not spawn_blocking: the runtime would wait for it on an error.
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let rss: u64 = pids.iter().map(|&pid| tree_memory_kib(pid, "VmRSS:")).sum();
                peak.fetch_max(rss as usize, Ordering::Relaxed);
                let pss: u64 = pids.iter().map(|&pid| tree_memory_kib(pid, "Pss:")).sum();
                peak_pss.fetch_max(pss as usize, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let args = Arc::new(args);
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..args.clients {
        let (args, tls, next, latencies) =
            (args.clone(), tls.clone(), next.clone(), latencies.clone());
        clients.push(tokio::spawn(async move {
            match args.mode {
                Mode::Reconnect => reconnect_client(&args, &tls, client, &next, &latencies).await,
                Mode::Stay => stay_client(&args, &tls, client, &next, &latencies).await,
            }
        }));
    }
    for client in clients {
        client.await.context("client task")??;
    }
    let submitted = started.elapsed();

    // Wait for the sink to hold every message.
    let deadline = started + Duration::from_secs(args.timeout);
    let want = start_files + args.messages;
    let mut received = count_files(&args.sink_dir, min_len)?;
    while received < want {
        if Instant::now() > deadline {
            done.store(true, Ordering::Relaxed);
            bail!(
                "{}: the sink got {} of {} messages in {} s",
                args.label,
                received - start_files,
                args.messages,
                args.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        received = count_files(&args.sink_dir, min_len)?;
    }
    let end_to_end = started.elapsed();
    check_dumps(&args.sink_dir)?;
    done.store(true, Ordering::Relaxed);
    sampler
        .join()
        .map_err(|_| anyhow::anyhow!("the RSS sampler panicked"))?;
    let cpu_after = args
        .server_pids
        .iter()
        .map(|&pid| tree_cpu_ticks(pid))
        .sum::<u64>();
    let sink_cpu_after = args.sink_pid.map(tree_cpu_ticks).unwrap_or(0);
    let ticks = clock_ticks();

    let hist = latencies.lock().await;
    let n = args.messages as f64;
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{{\"label\":\"{}\",\"mode\":\"{}\",\"messages\":{},\"clients\":{},\"size\":{},\
         \"submit_s\":{:.3},\"submit_per_s\":{:.1},\"end_to_end_s\":{:.3},\"per_s\":{:.1},\
         \"p50_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2},\"peak_rss_kib\":{},\"peak_pss_kib\":{},\
         \"server_cpu_s\":{:.2},\"sink_cpu_s\":{:.2},\"received\":{}}}",
        args.label,
        match args.mode {
            Mode::Reconnect => "reconnect",
            Mode::Stay => "stay",
        },
        args.messages,
        args.clients,
        args.size,
        submitted.as_secs_f64(),
        n / submitted.as_secs_f64(),
        end_to_end.as_secs_f64(),
        n / end_to_end.as_secs_f64(),
        ms(0.5),
        ms(0.99),
        hist.max() as f64 / 1000.0,
        peak_rss.load(Ordering::Relaxed),
        peak_pss.load(Ordering::Relaxed),
        cpu_after.saturating_sub(cpu_before) as f64 / ticks,
        sink_cpu_after.saturating_sub(sink_cpu_before) as f64 / ticks,
        received - start_files,
    );
    Ok(())
}

/// Each message: a whole session of its own, latency from connect to the 250 after DATA.
async fn reconnect_client(
    args: &Args,
    tls: &Arc<ClientConfig>,
    client: usize,
    next: &AtomicUsize,
    latencies: &Mutex<Histogram<u64>>,
) -> Result<()> {
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= args.messages {
            return Ok(());
        }
        let begin = Instant::now();
        let mut session = open_session(args, tls, client).await?;
        send_message(&mut session, args, client, index).await?;
        record(latencies, begin).await;
        command(&mut session, "QUIT", 221).await?;
    }
}

/// One session, many messages: latency from RSET to the 250 after DATA.
async fn stay_client(
    args: &Args,
    tls: &Arc<ClientConfig>,
    client: usize,
    next: &AtomicUsize,
    latencies: &Mutex<Histogram<u64>>,
) -> Result<()> {
    let mut session = open_session(args, tls, client).await?;
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= args.messages {
            break;
        }
        let begin = Instant::now();
        command(&mut session, "RSET", 250).await?;
        send_message(&mut session, args, client, index).await?;
        record(latencies, begin).await;
    }
    command(&mut session, "QUIT", 221).await?;
    Ok(())
}

async fn record(latencies: &Mutex<Histogram<u64>>, begin: Instant) {
    let micros = begin.elapsed().as_micros().clamp(1, 600_000_000) as u64;
    let _ = latencies.lock().await.record(micros);
}

type TlsSession = BufReader<tokio_rustls::client::TlsStream<TcpStream>>;

/// Connect, greeting, EHLO, STARTTLS, TLS handshake, EHLO, AUTH PLAIN.
async fn open_session(args: &Args, tls: &Arc<ClientConfig>, client: usize) -> Result<TlsSession> {
    let tcp = if args.sources == 0 {
        TcpStream::connect(&args.addr).await
    } else {
        let socket = tokio::net::TcpSocket::new_v4()?;
        let last = u8::try_from(10 + client % args.sources).context("--sources above 245")?;
        socket.bind(std::net::SocketAddr::from(([127, 0, 0, last], 0)))?;
        let addr = tokio::net::lookup_host(&args.addr)
            .await?
            .next()
            .context("no address")?;
        socket.connect(addr).await
    }
    .with_context(|| format!("connect {}", args.addr))?;
    tcp.set_nodelay(true)?;
    let mut plain = BufReader::new(tcp);
    expect(&mut plain, 220, "greeting").await?;
    let ehlo = command(&mut plain, "EHLO client.bench.test", 250).await?;
    ensure!(
        ehlo.to_ascii_uppercase().contains("STARTTLS"),
        "no STARTTLS offered: {ehlo}"
    );
    command(&mut plain, "STARTTLS", 220).await?;
    ensure!(
        plain.buffer().is_empty(),
        "the server sent more after its 220 to STARTTLS"
    );
    let name = ServerName::try_from("bench.test")?.to_owned();
    let stream = TlsConnector::from(tls.clone())
        .connect(name, plain.into_inner())
        .await
        .context("TLS handshake")?;
    let mut session = BufReader::new(stream);
    let ehlo = command(&mut session, "EHLO client.bench.test", 250).await?;
    ensure!(
        ehlo.to_ascii_uppercase().contains("PLAIN"),
        "no AUTH PLAIN after STARTTLS: {ehlo}"
    );
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("\0{}\0{}", args.user, args.password));
    command(&mut session, &format!("AUTH PLAIN {token}"), 235).await?;
    Ok(session)
}

/// MAIL, RCPT, DATA and the message; one command at a time (no pipelining).
async fn send_message<S>(session: &mut S, args: &Args, client: usize, index: usize) -> Result<()>
where
    S: AsyncBufRead + AsyncWrite + Unpin,
{
    command(session, &format!("MAIL FROM:<{}>", args.from), 250).await?;
    command(session, &format!("RCPT TO:<{}>", args.to), 250).await?;
    command(session, "DATA", 354).await?;
    let message = message(args, client, index);
    session.write_all(&message).await?;
    session.write_all(b".\r\n").await?;
    session.flush().await?;
    expect(session, 250, "end of DATA").await?;
    Ok(())
}

/// The message, `size` bytes with CRLFs (without the final dot): the same text for every
/// server, only the Message-ID differs between messages.
fn message(args: &Args, client: usize, index: usize) -> Vec<u8> {
    let mut text = format!(
        "From: Bench Sender <{from}>\r\nTo: <{to}>\r\nSubject: submission benchmark\r\n\
         Date: Wed, 02 Dec 2026 12:00:00 +0000\r\n\
         Message-ID: <{client:04}.{index:08}@submission.bench.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n",
        from = args.from,
        to = args.to,
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.";
    // Fox lines, then one line of x's (at least one) to the exact size.
    while text.len() + line.len() + 2 + 3 <= args.size {
        text.extend_from_slice(line);
        text.extend_from_slice(b"\r\n");
    }
    let rest = args.size.saturating_sub(text.len() + 2);
    text.extend(std::iter::repeat_n(b'x', rest));
    text.extend_from_slice(b"\r\n");
    text
}

/// Sends one command line and expects a reply with `code`; returns the reply's text.
async fn command<S>(session: &mut S, line: &str, code: u16) -> Result<String>
where
    S: AsyncBufRead + AsyncWrite + Unpin,
{
    session.write_all(line.as_bytes()).await?;
    session.write_all(b"\r\n").await?;
    session.flush().await?;
    let what = if line.starts_with("AUTH") {
        "AUTH PLAIN"
    } else {
        line
    };
    expect(session, code, what).await
}

/// Reads one (multi-line) reply and checks its code.
async fn expect<S>(session: &mut S, code: u16, what: &str) -> Result<String>
where
    S: AsyncBufRead + Unpin,
{
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(REPLY_TIMEOUT, session.read_line(&mut line))
            .await
            .with_context(|| format!("{what}: no reply in {REPLY_TIMEOUT:?}"))??;
        ensure!(n > 0, "{what}: connection closed after {reply:?}");
        reply.push_str(&line);
        let bytes = line.as_bytes();
        ensure!(bytes.len() >= 4, "{what}: bad reply line {line:?}");
        if bytes[3] == b' ' || bytes[3] == b'\r' || bytes[3] == b'\n' {
            break;
        }
    }
    let got: u16 = reply.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
    ensure!(
        got == code,
        "{what}: expected {code}, got {}",
        reply.trim_end()
    );
    Ok(reply)
}

/// TLS 1.2/1.3 with ring, any certificate accepted, no session resumption: every connection
/// pays a full handshake on both servers.
fn client_config() -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    config
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Files in the sink's dump directory that are whole: smtp-sink creates a dump file at MAIL
/// and writes it through a stdio buffer, so a file counts once it holds more than the message
/// and the headers the sink puts before it (`min_len`); [`check_dumps`] verifies the ends.
fn count_files(dir: &Path, min_len: u64) -> Result<usize> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .flatten()
        .filter(|entry| entry.metadata().is_ok_and(|m| m.len() >= min_len))
        .count())
}

/// Every dump ends with the message's last line (of x's) and the sink's empty line(s).
fn check_dumps(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        let bytes = std::fs::read(entry.path())?;
        let end = bytes.iter().rposition(|&b| b != b'\n').unwrap_or(0);
        ensure!(
            bytes.len() - end >= 3 && bytes[end] == b'x',
            "{} is not a whole message",
            entry.path().display()
        );
    }
    Ok(())
}
