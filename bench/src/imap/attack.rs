//! Victims under attack: V clients repeat one short session (connect, LOGIN, SELECT INBOX,
//! FETCH 20 ENVELOPEs, then an untimed LOGOUT) while A attackers, connecting from another
//! loopback address (127.0.0.2, so per-address limits can tell them apart), run one of the
//! worst things a client was found to do. The victims' session latency (connect to the end of
//! the FETCH) is what counts: p50, p99, max, sessions per second and failed sessions.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::conn::{Conn, quote};
use crate::idle::{Memory, measure};
use crate::maildata;

/// What the attackers do, each without pause until the end of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Nothing: the victims alone, the baseline.
    None,
    /// Before login: `LOGIN {10000000}` and, if the server says `+`, 10 MB of literal; 25
    /// connections per attacker.
    LoginLiteral,
    /// Wrong passwords for the attacker's own account, three per connection.
    Brute,
    /// After login: `LIST "" <1 MB pattern of %* characters>` (as a literal).
    ListPattern,
    /// After login: `SEARCH` with 100 `NOT TEXT` keys on a 1,000-message INBOX.
    SearchText,
    /// After login: `FETCH 1:*,1:*,… (FLAGS)` in one 60 KB line.
    FetchSets,
    /// 500 silent connections per attacker, held open.
    Silent,
}

pub struct AttackArgs {
    pub addr: String,
    pub victims: usize,
    pub attackers: usize,
    pub users: usize,
    pub password: String,
    pub duration: Duration,
    pub kind: Kind,
    pub label: String,
    /// The server's process (and with `tree` its children), measured after the run.
    pub pid: Option<u32>,
    pub tree: bool,
}

const ATTACKER_SOURCE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// One victim session; its latency in microseconds.
async fn victim_session(addr: &str, user: usize, password: &str) -> Result<u64> {
    let started = Instant::now();
    let mut conn = Conn::connect(addr).await?;
    let login = format!("user{user}@{}", maildata::DOMAIN);
    conn.command(&format!("LOGIN {} {}", quote(&login), quote(password)))
        .await?;
    conn.command("SELECT INBOX").await?;
    let reply = conn.command("FETCH 1:20 (ENVELOPE)").await?;
    if reply.fetches() == 0 {
        bail!("FETCH 1:20 gave no message");
    }
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    conn.logout().await?;
    Ok(micros)
}

async fn logged_in(addr: &str, user: usize, password: &str) -> Result<Conn> {
    let mut conn = Conn::connect_from(addr, Some(ATTACKER_SOURCE)).await?;
    let login = format!("user{user}@{}", maildata::DOMAIN);
    conn.command(&format!("LOGIN {} {}", quote(&login), quote(password)))
        .await?;
    conn.command("SELECT INBOX").await?;
    Ok(conn)
}

/// One round of the attack, counting each command the server answered in `done`; returns when
/// the round is over or the server dropped the connection.
async fn attack_round(args: &AttackArgs, user: usize, done: &AtomicU64) -> Result<()> {
    match args.kind {
        Kind::None => tokio::time::sleep(args.duration).await,
        Kind::LoginLiteral => {
            let mut rounds = JoinSet::new();
            for _ in 0..25 {
                let addr = args.addr.clone();
                rounds.spawn(async move { login_literal(&addr).await });
            }
            while let Some(round) = rounds.join_next().await {
                if matches!(round, Ok(Ok(()))) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Kind::Brute => {
            let mut conn = Conn::connect_from(&args.addr, Some(ATTACKER_SOURCE)).await?;
            let login = format!("user{user}@{}", maildata::DOMAIN);
            for attempt in 0..3 {
                conn.exchange(
                    &format!("LOGIN {} \"wrong-{attempt}\"", quote(&login)),
                    b"",
                    "",
                )
                .await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
        Kind::ListPattern => {
            let mut conn = logged_in(&args.addr, user, &args.password).await?;
            let pattern: Vec<u8> = b"%*".iter().copied().cycle().take(1 << 20).collect();
            loop {
                conn.exchange(&format!("LIST \"\" {{{}}}", pattern.len()), &pattern, "")
                    .await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
        Kind::SearchText => {
            let mut conn = logged_in(&args.addr, user, &args.password).await?;
            let mut command = String::from("SEARCH");
            for i in 0..100 {
                let _ = write!(command, " NOT TEXT \"qzx{i}zzq\"");
            }
            loop {
                conn.exchange(&command, b"", "").await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
        Kind::FetchSets => {
            let mut conn = logged_in(&args.addr, user, &args.password).await?;
            let mut sets = String::from("1:*");
            while sets.len() < 60_000 {
                sets.push_str(",1:*");
            }
            let command = format!("FETCH {sets} (FLAGS)");
            loop {
                conn.exchange(&command, b"", "").await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
        Kind::Silent => {
            let mut held = Vec::new();
            for _ in 0..500 {
                if let Ok(conn) = Conn::connect_from(&args.addr, Some(ATTACKER_SOURCE)).await {
                    held.push(conn);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(args.duration).await;
        }
    }
    Ok(())
}

/// `LOGIN {10000000}` before authentication; pushes the literal if invited to.
async fn login_literal(addr: &str) -> Result<()> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(ATTACKER_SOURCE, 0))?;
    let target: std::net::SocketAddr = addr.parse().context("address")?;
    let mut stream = socket.connect(target).await?;
    let mut buffer = vec![0u8; 4096];
    let _greeting = stream.read(&mut buffer).await?;
    stream.write_all(b"a LOGIN {10000000}\r\n").await?;
    let n = stream.read(&mut buffer).await?;
    if !buffer[..n].starts_with(b"+") {
        return Ok(()); // refused before any byte of the literal
    }
    let chunk = vec![b'x'; 64 << 10];
    let mut left = 10_000_000usize;
    while left > 0 {
        let len = left.min(chunk.len());
        stream.write_all(&chunk[..len]).await?;
        left -= len;
    }
    stream.write_all(b" \"password\"\r\n").await?;
    let _ = stream.read(&mut buffer).await?;
    Ok(())
}

pub async fn run(args: AttackArgs) -> Result<String> {
    let args = Arc::new(args);
    let deadline = Instant::now() + args.duration;
    let attack_user = args.users;
    let victim_users = args.users.saturating_sub(1).max(1);
    let rounds = Arc::new(AtomicU64::new(0));
    let attack_errors = Arc::new(AtomicU64::new(0));

    let mut attackers = JoinSet::new();
    for _ in 0..args.attackers {
        let args = Arc::clone(&args);
        let rounds = Arc::clone(&rounds);
        let errors = Arc::clone(&attack_errors);
        attackers.spawn(async move {
            while Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, attack_round(&args, attack_user, &rounds)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_elapsed) => break,
                }
            }
        });
    }
    // The attack gets a moment to start before the victims are measured.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut victims = JoinSet::new();
    for victim in 0..args.victims {
        let args = Arc::clone(&args);
        victims.spawn(async move {
            let mut latencies = Histogram::<u64>::new(3)?;
            let mut failures = 0u64;
            let mut first_failure = None;
            let user = victim % victim_users + 1;
            while Instant::now() < deadline {
                match victim_session(&args.addr, user, &args.password).await {
                    Ok(micros) => latencies.record(micros.max(1))?,
                    Err(err) => {
                        failures += 1;
                        first_failure.get_or_insert(format!("{err:#}"));
                    }
                }
            }
            anyhow::Ok((latencies, failures, first_failure))
        });
    }
    let measured_from = Instant::now();
    let mut latencies = Histogram::<u64>::new(3)?;
    let mut failures = 0;
    let mut first_failure = None;
    while let Some(joined) = victims.join_next().await {
        let (histogram, failed, failure) = joined.context("victim panicked")??;
        latencies.add(histogram)?;
        failures += failed;
        if first_failure.is_none() {
            first_failure = failure;
        }
    }
    let measured = measured_from.elapsed().as_secs_f64();
    attackers.abort_all();
    while attackers.join_next().await.is_some() {}

    let memory = match args.pid {
        Some(pid) => Some(measure(pid, args.tree)?),
        None => None,
    };
    let ms = |micros: u64| micros as f64 / 1000.0;
    let mut line = format!(
        "{}\t{:?}\t{}\t{:.1}\t{:.2}\t{:.2}\t{:.2}\t{}\t{}\t{}",
        args.label,
        args.kind,
        latencies.len(),
        latencies.len() as f64 / measured,
        ms(latencies.value_at_quantile(0.5)),
        ms(latencies.value_at_quantile(0.99)),
        ms(latencies.max()),
        failures,
        rounds.load(Ordering::Relaxed),
        attack_errors.load(Ordering::Relaxed),
    );
    let Memory { rss_kib, .. } = memory.unwrap_or_default();
    let _ = write!(line, "\t{:.1}", rss_kib as f64 / 1024.0);
    if let Some(failure) = first_failure {
        eprintln!(
            "{} {:?}: first victim failure: {failure}",
            args.label, args.kind
        );
    }
    Ok(line)
}
