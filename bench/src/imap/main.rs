//! `imap-bench`: Mailstead's IMAP server against Dovecot's, same data, same machine. Run it
//! with `bench/imap.sh` (the session mix under load) and `bench/idle.sh` (memory per idling
//! connection); see bench/README.md for what each number means.

mod attack;
mod compress;
mod conn;
mod cpu;
mod idle;
mod load;
mod maildata;
// Shared with submission-bench, which uses the memory functions this binary does not.
#[allow(dead_code)]
#[path = "../proctree.rs"]
mod proctree;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::{Parser, Subcommand};

use crate::conn::{Conn, quote};

#[derive(Parser, Debug)]
#[command(about = "IMAP load generator: Mailstead against Dovecot on the same data")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the deterministic data set: DIR/userN/Maildir/cur/…
    GenData {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 50)]
        users: usize,
        #[arg(long, default_value_t = 1000)]
        messages: usize,
    },
    /// Open every user's INBOX once (indexes built, caches filled), untimed by `load`
    Warm {
        #[arg(long)]
        addr: String,
        #[arg(long, default_value_t = 50)]
        users: usize,
        #[arg(long, default_value = "pass")]
        password: String,
        #[arg(long, default_value_t = 4)]
        parallel: usize,
    },
    /// Run the session mix with N clients for a fixed time; save the result
    Load {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        clients: usize,
        #[arg(long, default_value_t = 50)]
        users: usize,
        #[arg(long, default_value = "pass")]
        password: String,
        /// Seconds
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        /// Name of the server in tables
        #[arg(long)]
        label: String,
        /// Result file, for `compare`
        #[arg(long)]
        out: Option<PathBuf>,
        /// A whole session per loop, or one login and the commands on the same connection
        #[arg(long, value_enum, default_value = "reconnect")]
        mix: load::Mix,
    },
    /// Print one password hash for the passwd-file both servers read: `{PLAIN}…`, or
    /// `{ARGON2ID}…` made as Mailstead makes new hashes (m = 19 MiB, t = 2)
    Hash {
        #[arg(long, default_value = "ARGON2ID")]
        scheme: String,
        #[arg(long, default_value = "pass")]
        password: String,
    },
    /// Server CPU per command type: each alone COUNT times on one connection
    Cpu {
        #[arg(long)]
        addr: String,
        /// The server process (with its descendants)
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 500)]
        count: usize,
        #[arg(long, default_value = "pass")]
        password: String,
        #[arg(long)]
        label: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Bytes on the wire and server CPU for a FETCH of all of INBOX, with or without
    /// COMPRESS=DEFLATE; prints tab-separated lines (bench/compress.sh)
    Compress {
        #[arg(long)]
        addr: String,
        /// The server process (with its descendants)
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value = "user1@example.test")]
        login: String,
        #[arg(long, default_value = "pass")]
        password: String,
        #[arg(long)]
        label: String,
        /// Turn COMPRESS DEFLATE on after login
        #[arg(long)]
        compress: bool,
        /// Timed FETCHes of each kind
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Instead: open this many connections and print the server's RSS per idle one
        #[arg(long)]
        idle: Option<usize>,
    },
    /// Print the CPU table of one `cpu` result file, or two side by side (SECOND / FIRST)
    CompareCpu {
        first: PathBuf,
        second: Option<PathBuf>,
    },
    /// Print the table of one result file, or two side by side (ratios FIRST / SECOND)
    Compare {
        first: PathBuf,
        second: Option<PathBuf>,
    },
    /// Victims repeat LOGIN+SELECT+FETCH while attackers run one attack; prints a TSV line
    Attack {
        #[arg(long)]
        addr: String,
        #[arg(long, default_value_t = 10)]
        victims: usize,
        #[arg(long, default_value_t = 2)]
        attackers: usize,
        #[arg(long, default_value_t = 50)]
        users: usize,
        #[arg(long, default_value = "pass")]
        password: String,
        /// Seconds
        #[arg(long, default_value_t = 15.0)]
        duration: f64,
        #[arg(long, value_enum)]
        kind: attack::Kind,
        #[arg(long)]
        label: String,
        /// The server process to measure after the run
        #[arg(long)]
        pid: Option<u32>,
        /// Add up the process and all its descendants (Dovecot)
        #[arg(long)]
        tree: bool,
    },
    /// Hold N connections in IDLE and measure the server's memory (process PID, or its tree)
    Idle {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        connections: usize,
        #[arg(long, default_value_t = 50)]
        users: usize,
        #[arg(long, default_value = "pass")]
        password: String,
        /// The server process to measure
        #[arg(long)]
        pid: u32,
        /// Add up the process and all its descendants (Dovecot)
        #[arg(long)]
        tree: bool,
        #[arg(long)]
        label: String,
        /// Connections being opened at once
        #[arg(long, default_value_t = 64)]
        parallel: usize,
        /// Loopback source addresses to spread the connections over (127.0.0.2, 127.0.0.3,
        /// …: at most about 64k connections per source); 0 lets the system choose
        #[arg(long, default_value_t = 0)]
        sources: u8,
        /// Seconds to wait after the last IDLE before measuring
        #[arg(long, default_value_t = 3.0)]
        settle: f64,
    },
}

async fn warm(addr: &str, users: usize, password: &str, parallel: usize) -> Result<()> {
    let started = Instant::now();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for user in 1..=users {
        let gate = std::sync::Arc::clone(&gate);
        let addr = addr.to_owned();
        let password = password.to_owned();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.context("semaphore closed")?;
            let login = format!("user{user}@{}", maildata::DOMAIN);
            let mut conn = Conn::connect(&addr).await?;
            conn.command(&format!("LOGIN {} {}", quote(&login), quote(&password)))
                .await?;
            let reply = conn.command("SELECT INBOX").await?;
            let exists = reply.exists().context("SELECT INBOX: no * n EXISTS")?;
            let reply = conn.command("FETCH 1:* (FLAGS ENVELOPE)").await?;
            ensure!(
                reply.fetches() == exists as usize,
                "{login}: FETCH 1:* gave {} responses for {exists} messages",
                reply.fetches()
            );
            conn.command("UID SEARCH UNSEEN").await?;
            // The second folder of the mix without reconnects; NO when it already exists.
            conn.exchange(&format!("CREATE {}", load::SECOND), b"", "")
                .await?;
            conn.logout().await?;
            anyhow::Ok(exists)
        });
    }
    let mut messages = 0u64;
    while let Some(joined) = set.join_next().await {
        messages += u64::from(joined.context("warm-up task panicked")??);
    }
    eprintln!(
        "warm-up of {addr}: {users} INBOXes, {messages} messages opened and fetched in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Command::GenData {
            dir,
            users,
            messages,
        } => {
            let started = Instant::now();
            let (bytes, multipart) = maildata::generate(&dir, users, messages)?;
            eprintln!(
                "data set: {users} users x {messages} messages, {:.0} MiB ({:.1} KiB average), \
                 {multipart} multipart, written in {:.1} s",
                bytes as f64 / 1048576.0,
                bytes as f64 / 1024.0 / (users * messages).max(1) as f64,
                started.elapsed().as_secs_f64()
            );
        }
        Command::Warm {
            addr,
            users,
            password,
            parallel,
        } => warm(&addr, users, &password, parallel).await?,
        Command::Load {
            addr,
            clients,
            users,
            password,
            duration,
            label,
            out,
            mix,
        } => {
            let summary = load::run(&load::LoadArgs {
                addr: addr.clone(),
                clients,
                users,
                password,
                duration: Duration::from_secs_f64(duration),
                label,
                mix,
            })
            .await
            .with_context(|| format!("load on {addr} with {clients} clients"))?;
            eprintln!("{}", load::table_one(&summary));
            if let Some(out) = out {
                summary.save(&out)?;
            }
        }
        Command::Hash { scheme, password } => match scheme.to_ascii_uppercase().as_str() {
            "PLAIN" => println!("{{PLAIN}}{password}"),
            "ARGON2ID" => println!("{}", mailstead_password::hash(password.as_bytes())?),
            other => anyhow::bail!("scheme {other}: PLAIN or ARGON2ID"),
        },
        Command::Compress {
            addr,
            pid,
            login,
            password,
            label,
            compress,
            repeat,
            idle,
        } => {
            let args = compress::CompressArgs {
                addr,
                pid,
                login,
                password,
                label,
                compress,
                repeat,
            };
            if let Some(connections) = idle {
                let kib = compress::idle(&args, connections).await?;
                println!(
                    "{}\t{}\tidle connection (RSS per connection, {connections} open)\t\t\t{kib:.1} KiB",
                    args.label,
                    if args.compress { "COMPRESS" } else { "plain" },
                );
            } else {
                let results = compress::run(&args).await?;
                compress::print(&args, &results);
            }
        }
        Command::Cpu {
            addr,
            pid,
            count,
            password,
            label,
            out,
        } => {
            let result = cpu::run(&cpu::CpuArgs {
                addr,
                pid,
                count,
                password,
                label,
            })
            .await?;
            eprintln!("{}", cpu::table(&result, None));
            if let Some(out) = out {
                result.save(&out)?;
            }
        }
        Command::CompareCpu { first, second } => {
            let first = cpu::CpuResult::load(&first)?;
            let second = second.map(|p| cpu::CpuResult::load(&p)).transpose()?;
            println!("{}", cpu::table(&first, second.as_ref()));
        }
        Command::Compare { first, second } => {
            let first = load::Summary::load(&first)?;
            match second {
                Some(second) => {
                    let second = load::Summary::load(&second)?;
                    println!("{}", load::table_two(&first, &second));
                }
                None => println!("{}", load::table_one(&first)),
            }
        }
        Command::Attack {
            addr,
            victims,
            attackers,
            users,
            password,
            duration,
            kind,
            label,
            pid,
            tree,
        } => {
            let line = attack::run(attack::AttackArgs {
                addr,
                victims,
                attackers,
                users,
                password,
                duration: Duration::from_secs_f64(duration),
                kind,
                label,
                pid,
                tree,
            })
            .await?;
            println!("{line}");
        }
        Command::Idle {
            addr,
            connections,
            users,
            password,
            pid,
            tree,
            label,
            parallel,
            sources,
            settle,
        } => {
            let report = idle::run(&idle::IdleArgs {
                addr,
                connections,
                users,
                password,
                pid,
                tree,
                label,
                parallel,
                sources,
                settle: Duration::from_secs_f64(settle),
            })
            .await?;
            println!("{report}");
        }
    }
    Ok(())
}
