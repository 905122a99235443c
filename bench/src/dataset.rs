//! The data set: 1,000 domains, 100,000 mailboxes, 20,000 aliases, and the keys the
//! benchmarks look up.
//!
//! The bench seeds with bulk multi-row SQL INSERTs straight into Mailstead's schema (created
//! first by `Directory::open_and_migrate`), for speed: 100,000 audited one-row writes through
//! the management API would take far longer than the benchmark itself. Every lookup that is
//! measured goes only through the `Directory` API.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, AssertSqlSafe};

use mailstead_directory::Backend;

pub const DOMAINS: usize = 1_000;
pub const MAILBOXES_PER_DOMAIN: usize = 100;
pub const ALIASES_PER_DOMAIN: usize = 20;
/// Mailbox `u000` of every domain has the ARGON2ID hash: 1,000 of them.
pub const ARGON_MAILBOX: usize = 0;
/// Every mailbox's password.
pub const PASSWORD: &str = "bench-Passw0rd";
/// Rows per INSERT statement.
const BATCH: usize = 1_000;

pub fn domain(i: usize) -> String {
    format!("d{i:04}.bench.test")
}

pub fn mailbox(i: usize, j: usize) -> String {
    format!("u{j:03}@{}", domain(i))
}

pub fn alias(i: usize, k: usize) -> String {
    format!("a{k:02}@{}", domain(i))
}

/// The local member of alias `k`: a BLF-CRYPT mailbox of the same domain.
fn alias_local_member(k: usize) -> usize {
    (k * 5 + 1) % MAILBOXES_PER_DOMAIN
}

/// The external member of alias `k` of domain `i`, in one of 50 remote domains.
fn alias_external_member(i: usize, k: usize) -> String {
    format!("x{i:04}-{k:02}@remote{:02}.example.org", (i + k) % 50)
}

/// Every fourth alias lists its local member as an allowed sender.
fn alias_has_sender(k: usize) -> bool {
    k.is_multiple_of(4)
}

fn mailbox_id(i: usize, j: usize) -> usize {
    i * MAILBOXES_PER_DOMAIN + j + 1
}

fn alias_id(i: usize, k: usize) -> usize {
    i * ALIASES_PER_DOMAIN + k + 1
}

/// The two stored password hashes every mailbox shares.
pub struct Hashes {
    /// `{BLF-CRYPT}` cost 5, made by `doveadm pw`.
    pub blf: String,
    /// `{ARGON2ID}` made by `mailstead_password::hash` (Mailstead's default for new passwords).
    pub argon: String,
}

impl Hashes {
    pub fn make() -> Result<Hashes> {
        let output = std::process::Command::new("/usr/bin/doveadm")
            .args(["pw", "-s", "BLF-CRYPT", "-r", "5", "-p", PASSWORD])
            .output()
            .context("running /usr/bin/doveadm pw (is dovecot-core installed?)")?;
        ensure!(
            output.status.success(),
            "doveadm pw failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let blf = String::from_utf8(output.stdout)
            .context("doveadm pw printed non-UTF-8")?
            .trim()
            .to_owned();
        ensure!(
            blf.starts_with("{BLF-CRYPT}$2y$05$"),
            "unexpected doveadm output {blf:?}"
        );
        let argon = mailstead_password::hash(PASSWORD.as_bytes())?;
        for stored in [&blf, &argon] {
            ensure!(
                mailstead_password::verify(stored, PASSWORD.as_bytes())?,
                "{stored} does not verify"
            );
        }
        Ok(Hashes { blf, argon })
    }
}

/// One verification of each hash on one thread, without any lookup: the floor under the
/// `authenticate` rows. The fastest of 9, in milliseconds (the least disturbed by other work).
pub struct HashCost {
    pub blf_ms: f64,
    pub argon_ms: f64,
}

impl Hashes {
    pub fn cost(&self) -> Result<HashCost> {
        let fastest = |stored: &str| -> Result<f64> {
            let mut best = Duration::MAX;
            for _ in 0..9 {
                let started = Instant::now();
                ensure!(mailstead_password::verify(stored, PASSWORD.as_bytes())?);
                best = best.min(started.elapsed());
            }
            Ok(best.as_secs_f64() * 1000.0)
        };
        Ok(HashCost {
            blf_ms: fastest(&self.blf)?,
            argon_ms: fastest(&self.argon)?,
        })
    }
}

/// What seeding took.
pub struct SeedReport {
    pub rows: usize,
    pub elapsed: Duration,
}

/// A value for a SQL literal. Everything seeded is generated here; refuse anything that would
/// need escaping rather than escape it.
fn lit(value: &str) -> Result<String> {
    if value.contains(['\'', '\\', '\0']) {
        bail!("refusing to inline {value:?} into SQL");
    }
    Ok(format!("'{value}'"))
}

/// Inserts `rows` (each a parenthesised tuple) into `table` in statements of [`BATCH`] rows.
async fn insert_all(
    conn: &mut sqlx::AnyConnection,
    table_and_columns: &str,
    rows: &[String],
) -> Result<()> {
    for chunk in rows.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO {table_and_columns} VALUES {}",
            chunk.join(", ")
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await
            .with_context(|| format!("inserting into {table_and_columns}"))?;
    }
    Ok(())
}

/// A small pool of plain connections for seeding and for the cache check.
pub async fn seed_pool(url: &str, backend: Backend) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let url = if backend == Backend::Sqlite && !url.contains("mode=") {
        format!("{url}?mode=rw")
    } else {
        url.to_owned()
    };
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .with_context(|| format!("connecting to {url} to seed"))
}

/// Writes the data set into an empty, migrated database.
pub async fn seed(pool: &AnyPool, backend: Backend, hashes: &Hashes) -> Result<SeedReport> {
    let started = Instant::now();
    let mut domains = Vec::with_capacity(DOMAINS);
    let mut mailboxes = Vec::with_capacity(DOMAINS * MAILBOXES_PER_DOMAIN);
    let mut aliases = Vec::with_capacity(DOMAINS * ALIASES_PER_DOMAIN);
    let mut recipients = Vec::with_capacity(DOMAINS * ALIASES_PER_DOMAIN * 2);
    let mut senders = Vec::new();
    let blf = lit(&hashes.blf)?;
    let argon = lit(&hashes.argon)?;
    for i in 0..DOMAINS {
        let name = domain(i);
        // Explicit ids so that rows can refer to each other without reading back; the
        // sequences are left behind, which is fine for a database dropped at the end.
        domains.push(format!(
            "({}, {}, {})",
            i + 1,
            lit(&name)?,
            lit(&format!("/srv/mail/{name}"))?
        ));
        for j in 0..MAILBOXES_PER_DOMAIN {
            let local = format!("u{j:03}");
            let home = format!("/srv/mail/{name}/{local}");
            mailboxes.push(format!(
                "({}, {}, {}, {}, {}, {})",
                mailbox_id(i, j),
                lit(&local)?,
                if j == ARGON_MAILBOX { &argon } else { &blf },
                i + 1,
                lit(&home)?,
                lit(&format!("maildir:{home}/Maildir:LAYOUT=fs"))?
            ));
        }
        for k in 0..ALIASES_PER_DOMAIN {
            let id = alias_id(i, k);
            let member = alias_local_member(k);
            aliases.push(format!("({id}, {}, {})", lit(&format!("a{k:02}"))?, i + 1));
            recipients.push(format!(
                "({id}, {}, {})",
                lit(&mailbox(i, member))?,
                mailbox_id(i, member)
            ));
            recipients.push(format!(
                "({id}, {}, NULL)",
                lit(&alias_external_member(i, k))?
            ));
            if alias_has_sender(k) {
                senders.push(format!("({}, {id})", mailbox_id(i, member)));
            }
        }
    }
    let rows = domains.len() + mailboxes.len() + aliases.len() + recipients.len() + senders.len();

    let mut tx = pool.begin().await?;
    insert_all(&mut tx, "domains (id, domain, homedir)", &domains).await?;
    insert_all(
        &mut tx,
        "mailboxes (id, local_part, password, domain_id, homedir, maildir)",
        &mailboxes,
    )
    .await?;
    insert_all(&mut tx, "aliases (id, local_part, domain_id)", &aliases).await?;
    insert_all(
        &mut tx,
        "alias_recipients (alias_id, recipient_address, mailbox_id)",
        &recipients,
    )
    .await?;
    insert_all(&mut tx, "alias_senders (mailbox_id, alias_id)", &senders).await?;
    tx.commit().await?;

    // Statistics, as after any bulk load; no index is added or changed.
    let analyze = match backend {
        Backend::Sqlite | Backend::Postgres => "ANALYZE",
        Backend::MySql => {
            "ANALYZE TABLE domains, mailboxes, aliases, alias_recipients, alias_senders"
        }
    };
    sqlx::raw_sql(analyze).execute(pool).await?;

    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mailboxes")
        .fetch_one(pool)
        .await?;
    ensure!(
        usize::try_from(count)? == DOMAINS * MAILBOXES_PER_DOMAIN,
        "seeded {count} mailboxes"
    );
    Ok(SeedReport {
        rows,
        elapsed: started.elapsed(),
    })
}

/// What a key is in the data set, and so what answer is right for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Mailbox,
    Alias,
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Key {
    pub addr: String,
    pub kind: Kind,
}

/// Deterministic random keys (the same sequence every run and for every backend).
pub struct KeyGen {
    rng: StdRng,
}

impl KeyGen {
    pub fn new(seed: u64) -> KeyGen {
        KeyGen {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn random_mailbox(&mut self) -> Key {
        let i = self.rng.random_range(0..DOMAINS);
        let j = self.rng.random_range(0..MAILBOXES_PER_DOMAIN);
        Key {
            addr: mailbox(i, j),
            kind: Kind::Mailbox,
        }
    }

    /// The recipient mix: 70% mailboxes, 20% aliases, 10% unknown users of hosted domains.
    pub fn recipients(&mut self, n: usize) -> Vec<Key> {
        (0..n)
            .map(|_| {
                let roll = self.rng.random_range(0..100);
                let i = self.rng.random_range(0..DOMAINS);
                if roll < 70 {
                    self.random_mailbox()
                } else if roll < 90 {
                    Key {
                        addr: alias(i, self.rng.random_range(0..ALIASES_PER_DOMAIN)),
                        kind: Kind::Alias,
                    }
                } else {
                    Key {
                        addr: format!("nobody{}@{}", self.rng.random_range(0..1000), domain(i)),
                        kind: Kind::Unknown,
                    }
                }
            })
            .collect()
    }

    /// Logins: random mailboxes.
    pub fn logins(&mut self, n: usize) -> Vec<Key> {
        (0..n).map(|_| self.random_mailbox()).collect()
    }

    /// Logins whose password is BLF-CRYPT (`argon` false) or ARGON2ID (`argon` true).
    pub fn logins_with(&mut self, n: usize, argon: bool) -> Vec<Key> {
        (0..n)
            .map(|_| {
                let i = self.rng.random_range(0..DOMAINS);
                let j = if argon {
                    ARGON_MAILBOX
                } else {
                    self.rng.random_range(1..MAILBOXES_PER_DOMAIN)
                };
                Key {
                    addr: mailbox(i, j),
                    kind: Kind::Mailbox,
                }
            })
            .collect()
    }

    /// `n` keys drawn uniformly from `set`.
    pub fn sample(&mut self, set: &[Key], n: usize) -> Vec<Key> {
        (0..n)
            .map(|_| set[self.rng.random_range(0..set.len())].clone())
            .collect()
    }
}
