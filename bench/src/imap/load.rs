//! The IMAP load: N clients, each repeating one fixed session for a fixed time, every
//! command's latency recorded; results saved as a small text file and compared side by side.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::conn::{Conn, quote};
use crate::maildata;

/// The commands of one session, in order. `BODY.PEEK[]` runs [`BODIES`] times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Connect,
    Login,
    Select,
    FetchFlags,
    FetchEnvelope,
    FetchBody,
    SearchUnseen,
    StoreSeen,
    StoreUnseen,
    SearchFrom,
    SearchSubject,
    SearchSince,
    Append,
    StoreDeleted,
    Expunge,
    Noop,
    /// `SELECT` of the second folder ([`SECOND`]), in the mix without reconnects.
    SelectSecond,
    Logout,
}

pub const OPS: [Op; 18] = [
    Op::Connect,
    Op::Login,
    Op::Select,
    Op::FetchFlags,
    Op::FetchEnvelope,
    Op::FetchBody,
    Op::SearchUnseen,
    Op::StoreSeen,
    Op::StoreUnseen,
    Op::SearchFrom,
    Op::SearchSubject,
    Op::SearchSince,
    Op::Append,
    Op::StoreDeleted,
    Op::Expunge,
    Op::Noop,
    Op::SelectSecond,
    Op::Logout,
];

/// The second folder the mix without reconnects re-SELECTs; `warm` creates it.
pub const SECOND: &str = "Archive";

/// How clients use their connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// A whole session per loop: connect, LOGIN, the commands, LOGOUT.
    Reconnect,
    /// LOGIN once, then loop the commands, a NOOP, SELECT of the second folder, NOOP, and
    /// SELECT INBOX again, on the same connection.
    Stay,
}

/// `FETCH n (BODY.PEEK[])` per session.
pub const BODIES: usize = 3;
/// Messages per `FETCH a:b (ENVELOPE)`.
const ENVELOPES: u32 = 20;
/// UIDs flagged \Seen and back per session.
const STORED: usize = 5;

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Connect => "connect + greeting",
            Op::Login => "LOGIN",
            Op::Select => "SELECT INBOX",
            Op::FetchFlags => "FETCH 1:* (FLAGS)",
            Op::FetchEnvelope => "FETCH 20 (ENVELOPE)",
            Op::FetchBody => "FETCH n (BODY.PEEK[])",
            Op::SearchUnseen => "UID SEARCH UNSEEN",
            Op::StoreSeen => "UID STORE 5 +FLAGS (\\Seen)",
            Op::StoreUnseen => "UID STORE 5 -FLAGS (\\Seen)",
            Op::SearchFrom => "UID SEARCH FROM",
            Op::SearchSubject => "UID SEARCH SUBJECT",
            Op::SearchSince => "UID SEARCH SINCE",
            Op::Append => "APPEND (3 KiB)",
            Op::StoreDeleted => "UID STORE +FLAGS (\\Deleted)",
            Op::Expunge => "EXPUNGE",
            Op::Noop => "NOOP",
            Op::SelectSecond => "SELECT Archive",
            Op::Logout => "LOGOUT",
        }
    }

    fn index(self) -> usize {
        OPS.iter().position(|&op| op == self).unwrap_or(0)
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    // 1 µs to 10 min, 3 significant digits; recorded in µs.
    Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")
}

struct Recorder {
    hists: Vec<Histogram<u64>>,
    sessions: u64,
}

impl Recorder {
    fn new() -> Result<Recorder> {
        Ok(Recorder {
            hists: OPS.iter().map(|_| new_histogram()).collect::<Result<_>>()?,
            sessions: 0,
        })
    }

    fn record(&mut self, op: Op, started: Instant) {
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.hists[op.index()].saturating_record(micros.max(1));
    }
}

pub struct LoadArgs {
    pub addr: String,
    pub clients: usize,
    pub users: usize,
    pub password: String,
    pub duration: Duration,
    pub label: String,
    pub mix: Mix,
}

/// What a client knows between commands.
struct Client {
    index: usize,
    user: usize,
    password: String,
    rng: StdRng,
    appended: u64,
}

impl Client {
    fn login_name(&self) -> String {
        format!("user{}@{}", self.user, maildata::DOMAIN)
    }

    /// Connects and logs in, both timed.
    async fn log_in(&mut self, addr: &str, rec: &mut Recorder) -> Result<Conn> {
        let t = Instant::now();
        let mut conn = Conn::connect(addr).await?;
        rec.record(Op::Connect, t);

        let t = Instant::now();
        conn.command(&format!(
            "LOGIN {} {}",
            quote(&self.login_name()),
            quote(&self.password)
        ))
        .await?;
        rec.record(Op::Login, t);
        Ok(conn)
    }

    /// One session, every command timed.
    async fn session(&mut self, addr: &str, rec: &mut Recorder) -> Result<()> {
        let mut conn = self.log_in(addr, rec).await?;
        self.commands(&mut conn, rec).await?;
        let t = Instant::now();
        conn.logout().await?;
        rec.record(Op::Logout, t);
        rec.sessions += 1;
        Ok(())
    }

    /// The mix without reconnects: one round of the commands, then the second folder.
    async fn stay_round(&mut self, conn: &mut Conn, rec: &mut Recorder) -> Result<()> {
        self.commands(conn, rec).await?;
        let t = Instant::now();
        conn.command("NOOP").await?;
        rec.record(Op::Noop, t);
        let t = Instant::now();
        let reply = conn.command(&format!("SELECT {SECOND}")).await?;
        rec.record(Op::SelectSecond, t);
        ensure!(reply.exists().is_some(), "SELECT {SECOND}: no * n EXISTS");
        let t = Instant::now();
        conn.command("NOOP").await?;
        rec.record(Op::Noop, t);
        rec.sessions += 1;
        Ok(())
    }

    /// SELECT INBOX and the commands on it, every one timed. Checks that each answer has the
    /// shape the data set implies (FETCH counts, SEARCH results), so a server that answers
    /// fast but wrong fails.
    async fn commands(&mut self, conn: &mut Conn, rec: &mut Recorder) -> Result<()> {
        let t = Instant::now();
        let reply = conn.command("SELECT INBOX").await?;
        rec.record(Op::Select, t);
        let exists = reply
            .exists()
            .with_context(|| format!("SELECT INBOX of {}: no * n EXISTS", self.login_name()))?;
        ensure!(
            exists > ENVELOPES,
            "SELECT INBOX of {}: {exists} messages, the data set has more",
            self.login_name()
        );

        let t = Instant::now();
        let reply = conn.command("FETCH 1:* (FLAGS)").await?;
        rec.record(Op::FetchFlags, t);
        // Other clients of the same user may append and expunge meanwhile: allow a few.
        let got = reply.fetches();
        ensure!(
            got + 64 >= exists as usize,
            "FETCH 1:* (FLAGS) of {}: {got} FETCH responses for {exists} messages",
            self.login_name()
        );

        let first = self.rng.random_range(1..=exists - ENVELOPES + 1);
        let t = Instant::now();
        let reply = conn
            .command(&format!(
                "FETCH {first}:{} (ENVELOPE)",
                first + ENVELOPES - 1
            ))
            .await?;
        rec.record(Op::FetchEnvelope, t);
        ensure!(
            reply.fetches() >= ENVELOPES as usize,
            "FETCH (ENVELOPE) of {} messages gave {} FETCH responses",
            ENVELOPES,
            reply.fetches()
        );

        for _ in 0..BODIES {
            let n = self.rng.random_range(1..=exists - ENVELOPES);
            let t = Instant::now();
            let reply = conn.command(&format!("FETCH {n} (BODY.PEEK[])")).await?;
            rec.record(Op::FetchBody, t);
            ensure!(
                reply.fetches() >= 1 && reply.literal_bytes > 200,
                "FETCH {n} (BODY.PEEK[]): {} FETCH responses, {} literal bytes",
                reply.fetches(),
                reply.literal_bytes
            );
        }

        let t = Instant::now();
        let reply = conn.command("UID SEARCH UNSEEN").await?;
        rec.record(Op::SearchUnseen, t);
        let unseen = reply.search().context("UID SEARCH UNSEEN")?;
        ensure!(
            unseen.len() >= STORED,
            "UID SEARCH UNSEEN found {} messages; about a quarter of the data set is unseen",
            unseen.len()
        );
        let start = self.rng.random_range(0..=unseen.len() - STORED);
        let set = unseen[start..start + STORED]
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");

        let t = Instant::now();
        conn.command(&format!("UID STORE {set} +FLAGS (\\Seen)"))
            .await?;
        rec.record(Op::StoreSeen, t);
        let t = Instant::now();
        conn.command(&format!("UID STORE {set} -FLAGS (\\Seen)"))
            .await?;
        rec.record(Op::StoreUnseen, t);

        let last_name = maildata::LAST_NAMES[self.rng.random_range(0..maildata::LAST_NAMES.len())];
        let t = Instant::now();
        let reply = conn
            .command(&format!("UID SEARCH FROM {}", quote(last_name)))
            .await?;
        rec.record(Op::SearchFrom, t);
        let found = reply.search().context("UID SEARCH FROM")?;
        ensure!(
            !found.is_empty(),
            "UID SEARCH FROM {last_name:?} found nothing; every tenth sender has that name"
        );

        let word = maildata::SUBJECT_WORDS[self.rng.random_range(0..maildata::SUBJECT_WORDS.len())];
        let t = Instant::now();
        let reply = conn
            .command(&format!("UID SEARCH SUBJECT {}", quote(word)))
            .await?;
        rec.record(Op::SearchSubject, t);
        let found = reply.search().context("UID SEARCH SUBJECT")?;
        ensure!(
            !found.is_empty(),
            "UID SEARCH SUBJECT {word:?} found nothing"
        );

        let t = Instant::now();
        let reply = conn
            .command(&format!("UID SEARCH SINCE {}", maildata::SINCE))
            .await?;
        rec.record(Op::SearchSince, t);
        let found = reply.search().context("UID SEARCH SINCE")?;
        ensure!(
            !found.is_empty() && found.len() < exists as usize / 2,
            "UID SEARCH SINCE {} found {} of {exists} messages; the data set puts about 13 % there",
            maildata::SINCE,
            found.len()
        );

        self.appended += 1;
        let message = maildata::append_message(self.user, self.index, self.appended);
        let t = Instant::now();
        let reply = conn.append("INBOX", "\\Seen", &message).await?;
        rec.record(Op::Append, t);
        let uid = reply.append_uid().with_context(|| {
            format!(
                "APPEND: no [APPENDUID …] in {:?} (UIDPLUS, RFC 4315, is needed to delete the message again)",
                String::from_utf8_lossy(&reply.status)
            )
        })?;

        let t = Instant::now();
        conn.command(&format!("UID STORE {uid} +FLAGS (\\Deleted)"))
            .await?;
        rec.record(Op::StoreDeleted, t);

        let t = Instant::now();
        conn.command("EXPUNGE").await?;
        rec.record(Op::Expunge, t);
        Ok(())
    }
}

/// Per-command totals of one run, as saved and compared.
pub struct Summary {
    pub label: String,
    pub clients: usize,
    /// `reconnect` or `stay`.
    pub mix: String,
    pub elapsed: f64,
    pub sessions: u64,
    /// Per [`OPS`] entry: (count, mean µs, p50 µs, p99 µs).
    pub ops: Vec<(u64, f64, u64, u64)>,
}

impl Summary {
    fn ops_per_sec(&self, i: usize) -> f64 {
        self.ops[i].0 as f64 / self.elapsed
    }

    fn total_ops(&self) -> u64 {
        self.ops.iter().map(|o| o.0).sum()
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = format!(
            "label\t{}\nclients\t{}\nmix\t{}\nelapsed\t{}\nsessions\t{}\n",
            self.label, self.clients, self.mix, self.elapsed, self.sessions
        );
        for (op, (count, mean, p50, p99)) in OPS.iter().zip(&self.ops) {
            let _ = writeln!(text, "op\t{:?}\t{count}\t{mean}\t{p50}\t{p99}", op);
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    pub fn load(path: &Path) -> Result<Summary> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut s = Summary {
            label: String::new(),
            clients: 0,
            mix: String::new(),
            elapsed: 0.0,
            sessions: 0,
            ops: Vec::new(),
        };
        let bad = |line: &str| format!("{}: bad line {line:?}", path.display());
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["label", v] => s.label = (*v).to_owned(),
                ["clients", v] => s.clients = v.parse().with_context(|| bad(line))?,
                ["mix", v] => s.mix = (*v).to_owned(),
                ["elapsed", v] => s.elapsed = v.parse().with_context(|| bad(line))?,
                ["sessions", v] => s.sessions = v.parse().with_context(|| bad(line))?,
                ["op", _, count, mean, p50, p99] => s.ops.push((
                    count.parse().with_context(|| bad(line))?,
                    mean.parse().with_context(|| bad(line))?,
                    p50.parse().with_context(|| bad(line))?,
                    p99.parse().with_context(|| bad(line))?,
                )),
                _ => bail!(bad(line)),
            }
        }
        ensure!(
            s.ops.len() == OPS.len() && s.elapsed > 0.0,
            "{}: incomplete result file",
            path.display()
        );
        Ok(s)
    }
}

/// Runs the load and returns its summary. Every client's errors stop the run.
pub async fn run(args: &LoadArgs) -> Result<Summary> {
    ensure!(
        args.clients > 0 && args.users > 0,
        "clients and users must be > 0"
    );
    let addr: Arc<str> = Arc::from(args.addr.as_str());
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut handles = Vec::new();
    for index in 0..args.clients {
        let addr = Arc::clone(&addr);
        let mut client = Client {
            index,
            user: index % args.users + 1,
            password: args.password.clone(),
            // The same seed per client index for every server: the same commands in the same order.
            rng: StdRng::seed_from_u64(0x6c6f_6164 ^ index as u64),
            appended: 0,
        };
        let mix = args.mix;
        handles.push(tokio::spawn(async move {
            let mut rec = Recorder::new()?;
            let context = |client: &Client| format!("client {index} ({})", client.login_name());
            match mix {
                Mix::Reconnect => {
                    while Instant::now() < deadline {
                        client
                            .session(&addr, &mut rec)
                            .await
                            .with_context(|| context(&client))?;
                    }
                }
                Mix::Stay => {
                    let mut conn = client
                        .log_in(&addr, &mut rec)
                        .await
                        .with_context(|| context(&client))?;
                    while Instant::now() < deadline {
                        client
                            .stay_round(&mut conn, &mut rec)
                            .await
                            .with_context(|| context(&client))?;
                    }
                    let t = Instant::now();
                    conn.logout().await.with_context(|| context(&client))?;
                    rec.record(Op::Logout, t);
                }
            }
            anyhow::Ok(rec)
        }));
    }
    let mut total = Recorder::new()?;
    let mut first_error = None;
    for handle in handles {
        match handle.await.context("client task panicked")? {
            Ok(rec) => {
                for (sum, h) in total.hists.iter_mut().zip(&rec.hists) {
                    sum.add(h).context("merging histograms")?;
                }
                total.sessions += rec.sessions;
            }
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    if let Some(err) = first_error {
        return Err(err);
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Summary {
        label: args.label.clone(),
        clients: args.clients,
        mix: format!("{:?}", args.mix).to_lowercase(),
        elapsed,
        sessions: total.sessions,
        ops: total
            .hists
            .iter()
            .map(|h| {
                (
                    h.len(),
                    h.mean(),
                    h.value_at_quantile(0.50),
                    h.value_at_quantile(0.99),
                )
            })
            .collect(),
    })
}

fn ms(micros: f64) -> String {
    if micros >= 100_000.0 {
        format!("{:.0}", micros / 1000.0)
    } else if micros >= 10_000.0 {
        format!("{:.1}", micros / 1000.0)
    } else {
        format!("{:.2}", micros / 1000.0)
    }
}

fn rate(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// One server's table.
pub fn table_one(s: &Summary) -> String {
    let mut out = format!(
        "{}, {} clients, mix {}, {:.1} s: {} rounds ({}/s), {} commands ({}/s)\n\n\
         | command | ops/s | p50 ms | p99 ms | mean ms |\n|---|---:|---:|---:|---:|\n",
        s.label,
        s.clients,
        s.mix,
        s.elapsed,
        s.sessions,
        rate(s.sessions as f64 / s.elapsed),
        s.total_ops(),
        rate(s.total_ops() as f64 / s.elapsed)
    );
    for (i, op) in OPS.iter().enumerate() {
        let (count, mean, p50, p99) = s.ops[i];
        if count == 0 {
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            op.name(),
            rate(s.ops_per_sec(i)),
            ms(p50 as f64),
            ms(p99 as f64),
            ms(mean)
        );
    }
    out
}

/// Side by side: `a` is the server measured (Mailstead), `b` the reference (Dovecot).
pub fn table_two(a: &Summary, b: &Summary) -> String {
    let ratio = |x: f64, y: f64| {
        if y > 0.0 && x / y < 1.0 {
            format!("{:.2}x", x / y)
        } else if y > 0.0 {
            format!("{:.1}x", x / y)
        } else {
            "-".to_owned()
        }
    };
    let mut out = format!(
        "{} clients, mix {}, {:.1} s each ({} / {}):\n\n\
         | command | {a} ops/s | {b} ops/s | ratio ops/s | {a} p50 / p99 ms | {b} p50 / p99 ms | mean latency {b} / {a} |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        a.clients,
        a.mix,
        a.elapsed.min(b.elapsed),
        a.label,
        b.label,
        a = a.label,
        b = b.label
    );
    for (i, op) in OPS.iter().enumerate() {
        if a.ops[i].0 == 0 && b.ops[i].0 == 0 {
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} / {} | {} / {} | {} |",
            op.name(),
            rate(a.ops_per_sec(i)),
            rate(b.ops_per_sec(i)),
            ratio(a.ops_per_sec(i), b.ops_per_sec(i)),
            ms(a.ops[i].2 as f64),
            ms(a.ops[i].3 as f64),
            ms(b.ops[i].2 as f64),
            ms(b.ops[i].3 as f64),
            ratio(b.ops[i].1, a.ops[i].1),
        );
    }
    let (at, bt) = (
        a.total_ops() as f64 / a.elapsed,
        b.total_ops() as f64 / b.elapsed,
    );
    let (asess, bsess) = (a.sessions as f64 / a.elapsed, b.sessions as f64 / b.elapsed);
    let _ = writeln!(
        out,
        "| **all commands** | **{}** | **{}** | **{}** | | | |\n| rounds (whole mix) | {} | {} | {} | | | |",
        rate(at),
        rate(bt),
        ratio(at, bt),
        rate(asess),
        rate(bsess),
        ratio(asess, bsess)
    );
    out
}
