//! The tables: one per backend, Dovecot beside MariaDB, and a summary. Markdown, so that they
//! can be pasted into bench/RESULTS.md as printed.

use std::time::Duration;

use mailstead_directory::Backend;

use crate::BackendRun;
use crate::dataset::HashCost;
use crate::harness::Measurement;

/// The issue's target for cached resolution.
const TARGET_OPS: f64 = 100_000.0;
const TARGET_P99_US: f64 = 1_000.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bench {
    ResolveUncached,
    ResolveCached,
    AccountUncached,
    AccountCached,
    AuthBlfUncached,
    AuthBlfCached,
    AuthArgonUncached,
    AuthArgonCached,
}

impl Bench {
    pub const ALL: [Bench; 8] = [
        Bench::ResolveUncached,
        Bench::ResolveCached,
        Bench::AccountUncached,
        Bench::AccountCached,
        Bench::AuthBlfUncached,
        Bench::AuthBlfCached,
        Bench::AuthArgonUncached,
        Bench::AuthArgonCached,
    ];

    pub fn mailstead_label(self) -> &'static str {
        match self {
            Bench::ResolveUncached => "resolve, uncached (70/20/10 mix)",
            Bench::ResolveCached => "resolve, cached (70/20/10 mix)",
            Bench::AccountUncached => "account (login lookup), uncached",
            Bench::AccountCached => "account (login lookup), cached",
            Bench::AuthBlfUncached => "authenticate BLF-CRYPT cost 5, uncached",
            Bench::AuthBlfCached => "authenticate BLF-CRYPT cost 5, cached",
            Bench::AuthArgonUncached => "authenticate ARGON2ID, uncached",
            Bench::AuthArgonCached => "authenticate ARGON2ID, cached",
        }
    }

    pub fn dovecot_label(self) -> &'static str {
        match self {
            Bench::ResolveUncached => "userdb USER (same mix), cache off",
            Bench::ResolveCached => "userdb USER (same mix), auth cache",
            Bench::AccountUncached => "passdb PASS lookup, cache off",
            Bench::AccountCached => "passdb PASS lookup, auth cache",
            Bench::AuthBlfUncached => "AUTH PLAIN BLF-CRYPT cost 5, cache off",
            Bench::AuthBlfCached => "AUTH PLAIN BLF-CRYPT cost 5, auth cache",
            Bench::AuthArgonUncached => "AUTH PLAIN ARGON2ID, cache off",
            Bench::AuthArgonCached => "AUTH PLAIN ARGON2ID, auth cache",
        }
    }
}

pub struct Row {
    pub bench: Bench,
    pub concurrency: usize,
    pub m: Measurement,
}

pub struct Context {
    pub dovecot_version: String,
    pub blf: String,
    pub argon: String,
    pub working_set: usize,
    pub hash_cost: HashCost,
    pub load_before: String,
    pub load_after: String,
    pub total: Duration,
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every number.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".to_owned())
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds: one decimal below 100, whole numbers above.
pub fn micros(us: f64) -> String {
    if us < 100.0 {
        format!("{us:.1}")
    } else {
        thousands(us)
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b <= 0.0 {
        "-".to_owned()
    } else {
        format!("{:.1}x", a / b)
    }
}

fn table(rows: &[Row], dovecot: bool) {
    println!("| operation | tasks | ops | ops/s | p50 µs | p99 µs | wrong |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for bench in Bench::ALL {
        for row in rows.iter().filter(|row| row.bench == bench) {
            let label = if dovecot {
                bench.dovecot_label()
            } else {
                bench.mailstead_label()
            };
            println!(
                "| {label} | {} | {} | {} | {} | {} | {} |",
                row.concurrency,
                thousands(row.m.ops as f64),
                thousands(row.m.ops_per_sec()),
                micros(row.m.p50_us()),
                micros(row.m.p99_us()),
                row.m.wrong
            );
        }
    }
    println!();
}

fn backend_title(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
        Backend::MySql => "MariaDB",
    }
}

fn machine() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib / 1024.0 / 1024.0)
        })
        .unwrap_or(0.0);
    format!("{cores} cores, {mem_gib:.1} GiB, Linux {kernel}")
}

pub fn print(runs: &[BackendRun], context: &Context) {
    println!("# Mailstead directory benchmark");
    println!();
    println!("- machine: {}", machine());
    for run in runs {
        println!("- {}: {}", run.backend.name(), run.version);
    }
    println!("- Dovecot: {}", context.dovecot_version);
    println!(
        "- load average (1/5/15 min): {} at start, {} at end",
        context.load_before, context.load_after
    );
    let cost = &context.hash_cost;
    println!(
        "- one verification by mailstead_password on one thread (fastest of 9): BLF-CRYPT cost 5 \
         {:.1} ms, ARGON2ID {} {:.1} ms",
        cost.blf_ms,
        context.argon.rsplit('$').next().unwrap_or_default(),
        cost.argon_ms
    );
    println!(
        "- data: 1,000 domains, 100,000 mailboxes (1,000 `{}…`, 99,000 `{}…`), 20,000 aliases \
         (a local mailbox + an external address; 5,000 with a sender)",
        context.argon, context.blf
    );
    println!(
        "- cached rows draw from a working set of {} random keys, warmed first; Mailstead cache: default \
         DirectoryOptions (capacity 100,000, TTL 60 s); uncached: cache_capacity = 0; pool: 8 \
         connections (default)",
        thousands(context.working_set as f64)
    );
    println!();

    for run in runs {
        println!(
            "## Mailstead on {} ({})",
            backend_title(run.backend),
            run.version
        );
        println!();
        println!(
            "Migration {:.2} s; seeding {} rows with bulk INSERTs {:.1} s. Cache check: {}.",
            run.migrate.as_secs_f64(),
            thousands(run.seed.rows as f64),
            run.seed.elapsed.as_secs_f64(),
            run.cache_check
        );
        println!();
        table(&run.rows, false);
        match &run.dovecot {
            None => {}
            Some(Err(err)) => {
                println!("## Dovecot on the same MariaDB database: FAILED");
                println!();
                println!("```\n{err}\n```");
                println!();
            }
            Some(Ok(rows)) => {
                println!(
                    "## Dovecot {} auth on the same MariaDB database (MUM's user_query/password_query)",
                    context.dovecot_version
                );
                println!();
                table(rows, true);
                println!("### Mailstead (MariaDB) / Dovecot");
                println!();
                println!(
                    "| Mailstead | Dovecot | tasks | Mailstead ops/s | Dovecot ops/s | throughput ratio | Mailstead p99 µs | Dovecot p99 µs | p99 ratio (Dovecot/Mailstead) |"
                );
                println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
                for bench in Bench::ALL {
                    for ours in run.rows.iter().filter(|row| row.bench == bench) {
                        let Some(theirs) = rows
                            .iter()
                            .find(|row| row.bench == bench && row.concurrency == ours.concurrency)
                        else {
                            continue;
                        };
                        println!(
                            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                            bench.mailstead_label(),
                            bench.dovecot_label(),
                            ours.concurrency,
                            thousands(ours.m.ops_per_sec()),
                            thousands(theirs.m.ops_per_sec()),
                            ratio(ours.m.ops_per_sec(), theirs.m.ops_per_sec()),
                            micros(ours.m.p99_us()),
                            micros(theirs.m.p99_us()),
                            ratio(theirs.m.p99_us(), ours.m.p99_us()),
                        );
                    }
                }
                println!();
            }
        }
    }

    println!("## Summary");
    println!();
    println!(
        "Target (issue): >= {} cached resolutions/s with p99 < {} µs.",
        thousands(TARGET_OPS),
        thousands(TARGET_P99_US)
    );
    println!();
    for run in runs {
        for row in run
            .rows
            .iter()
            .filter(|row| row.bench == Bench::ResolveCached)
        {
            let met = row.m.ops_per_sec() >= TARGET_OPS && row.m.p99_us() < TARGET_P99_US;
            println!(
                "- {} tasks {}: {} resolutions/s, p99 {} µs: {}",
                run.backend.name(),
                row.concurrency,
                thousands(row.m.ops_per_sec()),
                micros(row.m.p99_us()),
                if met { "MET" } else { "NOT MET" }
            );
        }
    }
    let wrong: u64 = runs
        .iter()
        .flat_map(|run| run.rows.iter())
        .map(|row| row.m.wrong)
        .sum();
    println!(
        "- wrong answers (Mailstead, all backends): {wrong}{}",
        if wrong == 0 { "" } else { "  <-- CHECK" }
    );
    for run in runs {
        if let Some(Ok(rows)) = &run.dovecot {
            for bench in [
                Bench::ResolveCached,
                Bench::AccountUncached,
                Bench::AuthBlfUncached,
            ] {
                for ours in run.rows.iter().filter(|row| row.bench == bench) {
                    if let Some(theirs) = rows
                        .iter()
                        .find(|row| row.bench == bench && row.concurrency == ours.concurrency)
                    {
                        println!(
                            "- vs Dovecot, {} tasks {}: {} throughput",
                            bench.mailstead_label(),
                            ours.concurrency,
                            ratio(ours.m.ops_per_sec(), theirs.m.ops_per_sec())
                        );
                    }
                }
            }
        }
    }
    println!("- total run time: {:.0} s", context.total.as_secs_f64());
}
