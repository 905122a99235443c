//! Idle connections: N clients log in, SELECT INBOX and IDLE; the server's memory is measured
//! before and while they idle; at the end every connection sends DONE and must get its tagged
//! OK, which proves it was still idling.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::conn::{Conn, quote};
use crate::maildata;

/// Memory of a process tree, from /proc.
#[derive(Clone, Copy, Default)]
pub struct Memory {
    pub processes: usize,
    pub rss_kib: u64,
    pub pss_kib: u64,
}

fn field_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_ascii_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Parent of every process, from /proc/PID/stat (field 4, after the parenthesised name).
fn parents() -> Result<HashMap<u32, u32>> {
    let mut map = HashMap::new();
    for entry in std::fs::read_dir("/proc").context("listing /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit while we look: skip it.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = after
            .split_ascii_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
        {
            map.insert(pid, ppid);
        }
    }
    Ok(map)
}

/// RSS (VmRSS) and PSS (smaps_rollup) of `pid`, and with `tree` of all its descendants.
pub fn measure(pid: u32, tree: bool) -> Result<Memory> {
    let mut pids = vec![pid];
    if tree {
        let parents = parents()?;
        let mut i = 0;
        while i < pids.len() {
            let parent = pids[i];
            pids.extend(
                parents
                    .iter()
                    .filter(|&(_, &pp)| pp == parent)
                    .map(|(&p, _)| p),
            );
            i += 1;
        }
    }
    let mut memory = Memory::default();
    for p in pids {
        let status = std::fs::read_to_string(format!("/proc/{p}/status"));
        let rollup = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup"));
        match (status, rollup) {
            (Ok(status), Ok(rollup)) => {
                memory.processes += 1;
                memory.rss_kib += field_kib(&status, "VmRSS:").unwrap_or(0);
                memory.pss_kib += field_kib(&rollup, "Pss:").unwrap_or(0);
            }
            // The top process must be there; a child may have exited meanwhile.
            _ if p == pid => anyhow::bail!("process {pid} is gone (/proc/{pid}/status)"),
            _ => {}
        }
    }
    Ok(memory)
}

pub struct IdleArgs {
    pub addr: String,
    pub connections: usize,
    pub users: usize,
    pub password: String,
    pub pid: u32,
    pub tree: bool,
    pub label: String,
    pub parallel: usize,
    /// Loopback source addresses 127.0.0.2 … to spread connections over; 0: the system's.
    pub sources: u8,
    pub settle: Duration,
}

/// The source address of connection `i`: one port range holds about 64k connections to one
/// server address, so more need more sources.
fn source(i: usize, sources: u8) -> Option<IpAddr> {
    (sources > 0).then(|| {
        let k = u8::try_from(i % usize::from(sources)).unwrap_or(0);
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + k))
    })
}

async fn open(
    addr: &str,
    source: Option<IpAddr>,
    user: usize,
    password: &str,
) -> Result<(Conn, String)> {
    let mut conn = Conn::connect_from(addr, source).await?;
    conn.command(&format!(
        "LOGIN {} {}",
        quote(&format!("user{user}@{}", maildata::DOMAIN)),
        quote(password)
    ))
    .await?;
    let reply = conn.command("SELECT INBOX").await?;
    ensure!(reply.exists().is_some(), "SELECT INBOX: no * n EXISTS");
    let tag = conn.idle().await?;
    Ok((conn, tag))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Opens the connections, measures, ends them; returns the report.
pub async fn run(args: &IdleArgs) -> Result<String> {
    let before = measure(args.pid, args.tree)?;
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.parallel.max(1)));
    let mut set = JoinSet::new();
    for i in 0..args.connections {
        let gate = Arc::clone(&gate);
        let addr = args.addr.clone();
        let password = args.password.clone();
        let user = i % args.users + 1;
        let source = source(i, args.sources);
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.context("semaphore closed")?;
            open(&addr, source, user, &password)
                .await
                .with_context(|| format!("connection {i} (user{user})"))
        });
    }
    let mut idling = Vec::with_capacity(args.connections);
    let mut first_error = None;
    let mut failed = 0usize;
    while let Some(joined) = set.join_next().await {
        match joined.context("connection task panicked")? {
            Ok(conn) => idling.push(conn),
            Err(err) => {
                failed += 1;
                first_error.get_or_insert(err);
            }
        }
    }
    let opened_in = started.elapsed();
    if let Some(err) = first_error {
        return Err(err.context(format!(
            "{failed} of {} connections did not reach IDLE ({} did)",
            args.connections,
            idling.len()
        )));
    }
    tokio::time::sleep(args.settle).await;
    let during = measure(args.pid, args.tree)?;

    // Every connection ends its IDLE: the tagged OK proves it was idling all along.
    let mut ended = 0usize;
    let mut set = JoinSet::new();
    for (i, (mut conn, tag)) in idling.into_iter().enumerate() {
        let gate = Arc::clone(&gate);
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.context("semaphore closed")?;
            conn.done(&tag)
                .await
                .with_context(|| format!("connection {i}: ending IDLE"))?;
            conn.logout().await
        });
    }
    let mut end_error = None;
    while let Some(joined) = set.join_next().await {
        match joined.context("connection task panicked")? {
            Ok(()) => ended += 1,
            Err(err) => {
                end_error.get_or_insert(err);
            }
        }
    }
    if let Some(err) = end_error {
        return Err(err.context(format!(
            "only {ended} of {} idling connections ended IDLE with a tagged OK",
            args.connections
        )));
    }

    let n = args.connections as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} connections logged in, SELECTed INBOX and got the IDLE continuation in {:.1} s; \
         all {ended} ended IDLE with a tagged OK afterwards",
        args.label,
        args.connections,
        opened_in.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| {} | processes | RSS | PSS |\n|---|---:|---:|---:|\n\
         | before | {} | {} | {} |\n| {} idling | {} | {} | {} |\n\
         | per connection | | {:.1} KiB | {:.1} KiB |",
        args.label,
        before.processes,
        mib(before.rss_kib),
        mib(before.pss_kib),
        args.connections,
        during.processes,
        mib(during.rss_kib),
        mib(during.pss_kib),
        during.rss_kib.saturating_sub(before.rss_kib) as f64 / n,
        during.pss_kib.saturating_sub(before.pss_kib) as f64 / n,
    );
    let _ = writeln!(
        out,
        "RESULT\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        args.label,
        args.connections,
        before.processes,
        before.rss_kib,
        before.pss_kib,
        during.processes,
        during.rss_kib,
        during.pss_kib
    );
    Ok(out)
}
