//! Server CPU per command: each command type runs alone COUNT times on one connection (LOGIN:
//! COUNT sessions of connect, LOGIN, LOGOUT) while nothing else talks to the server, and the
//! server's CPU time (user + system of its whole process tree, reaped children included, from
//! /proc) is read before and after. CPU time, unlike throughput, hardly depends on what else
//! the machine is doing.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::conn::{Conn, quote};
use crate::load::SECOND;
use crate::maildata;
use crate::proctree::{clock_ticks, tree_cpu_ticks};

pub struct CpuArgs {
    pub addr: String,
    pub pid: u32,
    pub count: usize,
    pub password: String,
    pub label: String,
}

/// The command types measured, in order, with what the table calls them.
const KINDS: [&str; 16] = [
    "connect + LOGIN + LOGOUT",
    "SELECT INBOX",
    "SELECT Archive",
    "NOOP",
    "FETCH 1:* (FLAGS)",
    "FETCH 20 (ENVELOPE)",
    "FETCH n (BODY.PEEK[])",
    "UID SEARCH UNSEEN",
    "UID SEARCH FROM",
    "UID STORE +FLAGS (\\Seen)",
    "APPEND + UID STORE \\Deleted + EXPUNGE",
    "UID SORT (DATE)",
    "UID SORT (SUBJECT)",
    "UID SORT (FROM)",
    "UID SORT (ARRIVAL)",
    "UID THREAD REFERENCES",
];

/// The whole-folder SORT and THREAD commands of [`KINDS`] from index 11: measured on a warm
/// folder (each server has read the headers once, before the measurement).
const WHOLE_FOLDER: [&str; 5] = [
    "UID SORT (DATE) UTF-8 ALL",
    "UID SORT (SUBJECT) UTF-8 ALL",
    "UID SORT (FROM) UTF-8 ALL",
    "UID SORT (ARRIVAL) UTF-8 ALL",
    "UID THREAD REFERENCES UTF-8 ALL",
];

/// Server CPU milliseconds per command, per entry of [`KINDS`].
pub struct CpuResult {
    pub label: String,
    pub ms: Vec<f64>,
}

/// The server's CPU time so far, in ms. Reaped children are counted by their parent only
/// once the parent has waited for them: a short pause lets it.
async fn server_ms(pid: u32) -> f64 {
    tokio::time::sleep(Duration::from_millis(300)).await;
    tree_cpu_ticks(pid) as f64 * 1000.0 / clock_ticks()
}

async fn log_in(addr: &str, login: &str, password: &str) -> Result<Conn> {
    let mut conn = Conn::connect(addr).await?;
    conn.command(&format!("LOGIN {} {}", quote(login), quote(password)))
        .await?;
    Ok(conn)
}

pub async fn run(args: &CpuArgs) -> Result<CpuResult> {
    ensure!(args.count > 0, "count must be > 0");
    let login = format!("user1@{}", maildata::DOMAIN);
    let n = args.count;
    let mut ms = Vec::with_capacity(KINDS.len());
    for (kind, name) in KINDS.iter().enumerate() {
        // Each type on a fresh connection with INBOX selected, set up outside the measurement.
        let mut conn = log_in(&args.addr, &login, &args.password).await?;
        let reply = conn.command("SELECT INBOX").await?;
        let exists = reply.exists().context("SELECT INBOX: no * n EXISTS")?;
        ensure!(
            exists > 20,
            "INBOX has {exists} messages; the data set has more"
        );
        if let Some(command) = kind.checked_sub(11).and_then(|k| WHOLE_FOLDER.get(k)) {
            conn.command(command).await.map(drop)?;
        }
        let before = server_ms(args.pid).await;
        for i in 0..n {
            let k = u32::try_from(i).unwrap_or(u32::MAX);
            match kind {
                0 => log_in(&args.addr, &login, &args.password)
                    .await?
                    .logout()
                    .await
                    .map(drop)?,
                1 => conn.command("SELECT INBOX").await.map(drop)?,
                2 => conn.command(&format!("SELECT {SECOND}")).await.map(drop)?,
                3 => conn.command("NOOP").await.map(drop)?,
                4 => conn.command("FETCH 1:* (FLAGS)").await.map(drop)?,
                5 => {
                    let first = 1 + k % (exists - 20);
                    conn.command(&format!("FETCH {first}:{} (ENVELOPE)", first + 19))
                        .await
                        .map(drop)?
                }
                6 => {
                    let msg = 1 + k % exists;
                    conn.command(&format!("FETCH {msg} (BODY.PEEK[])"))
                        .await
                        .map(drop)?
                }
                7 => conn.command("UID SEARCH UNSEEN").await.map(drop)?,
                8 => {
                    let name = maildata::LAST_NAMES[i % maildata::LAST_NAMES.len()];
                    conn.command(&format!("UID SEARCH FROM {}", quote(name)))
                        .await
                        .map(drop)?
                }
                // Flags set and cleared in turn, so every STORE changes something.
                9 => {
                    let sign = if i % 2 == 0 { '+' } else { '-' };
                    conn.command(&format!(
                        "STORE {} {sign}FLAGS (\\Seen)",
                        1 + (k / 2) % exists
                    ))
                    .await
                    .map(drop)?
                }
                10 => {
                    let message = maildata::append_message(1, 0, i as u64);
                    let reply = conn.append("INBOX", "\\Seen", &message).await?;
                    let uid = reply.append_uid().context("APPEND: no [APPENDUID …]")?;
                    conn.command(&format!("UID STORE {uid} +FLAGS (\\Deleted)"))
                        .await?;
                    conn.command("EXPUNGE").await.map(drop)?
                }
                11..=15 => conn.command(WHOLE_FOLDER[kind - 11]).await.map(drop)?,
                _ => bail!("no command type {kind}"),
            }
        }
        let after = server_ms(args.pid).await;
        conn.logout()
            .await
            .with_context(|| format!("after {name}"))?;
        ms.push((after - before) / n as f64);
    }
    Ok(CpuResult {
        label: args.label.clone(),
        ms,
    })
}

impl CpuResult {
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = format!("label\t{}\n", self.label);
        for ms in &self.ms {
            let _ = writeln!(text, "{ms}");
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    pub fn load(path: &Path) -> Result<CpuResult> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut lines = text.lines();
        let label = lines
            .next()
            .and_then(|l| l.strip_prefix("label\t"))
            .with_context(|| format!("{}: no label line", path.display()))?
            .to_owned();
        let ms = lines
            .map(|l| l.parse::<f64>())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{}: bad line", path.display()))?;
        ensure!(ms.len() == KINDS.len(), "{}: incomplete", path.display());
        Ok(CpuResult { label, ms })
    }
}

/// One or two servers' CPU per command; the ratio is `second / first` (how many times the
/// CPU the reference spends).
pub fn table(first: &CpuResult, second: Option<&CpuResult>) -> String {
    let mut out =
        String::from("server CPU per command (ms, user + system of the whole process tree)\n\n");
    match second {
        None => {
            let _ = writeln!(out, "| command | {} |\n|---|---:|", first.label);
            for (name, ms) in KINDS.iter().zip(&first.ms) {
                let _ = writeln!(out, "| {name} | {ms:.3} |");
            }
        }
        Some(second) => {
            let _ = writeln!(
                out,
                "| command | {a} | {b} | {b} / {a} |\n|---|---:|---:|---:|",
                a = first.label,
                b = second.label
            );
            for (i, name) in KINDS.iter().enumerate() {
                let (a, b) = (first.ms[i], second.ms[i]);
                let ratio = if a > 0.0 {
                    format!("{:.1}x", b / a)
                } else {
                    "-".to_owned()
                };
                let _ = writeln!(out, "| {name} | {a:.3} | {b:.3} | {ratio} |");
            }
        }
    }
    out
}
