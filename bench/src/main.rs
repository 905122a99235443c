//! `directory-bench`: how fast Mailstead's directory answers, on SQLite, PostgreSQL and
//! MariaDB, side by side with Dovecot's SQL auth on the same MariaDB data. Run it with
//! `bench/directory.sh`; see bench/README.md for what each number means.
//!
//! It writes nothing into the repository: every database is created for the run
//! (`mstbench_<pid>`, or a temporary SQLite file) and dropped at the end, and the tables go to
//! stdout (progress to stderr).

mod dataset;
mod dovecot;
mod harness;
mod mailstead;
mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use mailstead_directory::resolve::{Outcome, Rejection};
use mailstead_directory::{Backend, Directory, DirectoryOptions};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, AssertSqlSafe};

use crate::dataset::{Hashes, Key, KeyGen, SeedReport};
use crate::harness::{Measurement, Worker};
use crate::report::{Bench, Row};

#[derive(Parser, Debug)]
#[command(about = "Benchmark Mailstead's directory (and Dovecot's SQL auth on the same data)")]
struct Args {
    /// Backends to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres,mysql")]
    backends: Vec<String>,
    /// Concurrent tokio tasks (and Dovecot connections) per measurement.
    #[arg(long, value_delimiter = ',', default_value = "2,16")]
    concurrency: Vec<usize>,
    /// Operations per cached measurement.
    #[arg(long, default_value_t = 200_000)]
    cached_ops: usize,
    /// Operations per uncached measurement.
    #[arg(long, default_value_t = 20_000)]
    uncached_ops: usize,
    /// Logins per BLF-CRYPT (cost 5) authentication measurement.
    #[arg(long, default_value_t = 2_000)]
    blf_ops: usize,
    /// Logins per ARGON2ID authentication measurement.
    #[arg(long, default_value_t = 200)]
    argon_ops: usize,
    /// Size of the random key set the cached measurements draw from (warmed into the cache first).
    #[arg(long, default_value_t = 20_000)]
    working_set: usize,
    /// Skip the Dovecot comparison.
    #[arg(long)]
    no_dovecot: bool,
    /// PostgreSQL server (trust auth); the run creates and drops a database there.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    /// MariaDB server; the run creates and drops a database there.
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306")]
    mysql: String,
}

/// Every key list, generated once from a fixed seed so that each backend and Dovecot get the
/// same lookups in the same order.
struct Keys {
    resolve_uncached: Arc<Vec<Key>>,
    resolve_set: Arc<Vec<Key>>,
    resolve_cached: Arc<Vec<Key>>,
    login_uncached: Arc<Vec<Key>>,
    login_set: Arc<Vec<Key>>,
    login_cached: Arc<Vec<Key>>,
    blf: Arc<Vec<Key>>,
    argon: Arc<Vec<Key>>,
}

impl Keys {
    fn new(args: &Args) -> Keys {
        let mut keys = KeyGen::new(0x6d73_7462);
        let resolve_set = keys.recipients(args.working_set);
        let login_set = keys.logins(args.working_set);
        Keys {
            resolve_uncached: Arc::new(keys.recipients(args.uncached_ops)),
            resolve_cached: Arc::new(keys.sample(&resolve_set, args.cached_ops)),
            resolve_set: Arc::new(resolve_set),
            login_uncached: Arc::new(keys.logins(args.uncached_ops)),
            login_cached: Arc::new(keys.sample(&login_set, args.cached_ops)),
            login_set: Arc::new(login_set),
            blf: Arc::new(keys.logins_with(args.blf_ops, false)),
            argon: Arc::new(keys.logins_with(args.argon_ops, true)),
        }
    }
}

/// What one backend gave.
pub struct BackendRun {
    pub backend: Backend,
    pub version: String,
    pub migrate: Duration,
    pub seed: SeedReport,
    pub cache_check: String,
    pub rows: Vec<Row>,
    /// Dovecot on the same database (MariaDB only): its rows, or why there are none.
    pub dovecot: Option<Result<Vec<Row>, String>>,
}

fn options(url: &str, cache: bool) -> DirectoryOptions {
    let mut options = DirectoryOptions::new(url, "/srv/mail");
    if !cache {
        // moka 0.12 treats max_capacity 0 as "cache disabled": get() returns None without
        // looking and insert() stores nothing (moka src/sync/base_cache.rs is_map_disabled).
        // check_caching() verifies the effect through the API.
        options.cache_capacity = 0;
    }
    options
}

fn workers<W: Worker>(n: usize, make: impl Fn() -> W) -> Vec<W> {
    (0..n).map(|_| make()).collect()
}

async fn measure<W: Worker>(
    label: &str,
    bench: Bench,
    concurrency: usize,
    workers: Vec<W>,
    keys: &Arc<Vec<Key>>,
) -> Result<Row> {
    let m = harness::run(workers, Arc::clone(keys)).await?;
    eprintln!(
        "  {label:<9} {:<42} tasks {concurrency:>2}: {:>10} ops/s  p50 {:>9} µs  p99 {:>9} µs{}",
        if label == "dovecot" {
            bench.dovecot_label()
        } else {
            bench.mailstead_label()
        },
        report::thousands(m.ops_per_sec()),
        report::micros(m.p50_us()),
        report::micros(m.p99_us()),
        if m.wrong > 0 {
            format!("  WRONG ANSWERS: {}", m.wrong)
        } else {
            String::new()
        }
    );
    Ok(Row {
        bench,
        concurrency,
        m,
    })
}

/// Fills the cache: every key of the set once, 16 at a time.
async fn warm<W: Worker>(workers: Vec<W>, keys: &Arc<Vec<Key>>) -> Result<Measurement> {
    let m = harness::run(workers, Arc::clone(keys)).await?;
    ensure!(m.wrong == 0, "{} wrong answers while warming", m.wrong);
    Ok(m)
}

/// All Mailstead measurements on one database.
async fn bench_mailstead(
    label: &str,
    uncached: &Directory,
    cached: &Directory,
    keys: &Keys,
    args: &Args,
) -> Result<Vec<Row>> {
    use mailstead::{Account, Authenticate, Resolve};
    let mut rows = Vec::new();
    let u = || uncached.clone();
    let c = || cached.clone();
    for &n in &args.concurrency {
        rows.push(
            measure(
                label,
                Bench::ResolveUncached,
                n,
                workers(n, || Resolve(u())),
                &keys.resolve_uncached,
            )
            .await?,
        );
    }
    for &n in &args.concurrency {
        // Re-warmed before each run: the cache TTL (60 s, the default) must not expire
        // entries in the middle of a measurement.
        warm(workers(16, || Resolve(c())), &keys.resolve_set).await?;
        rows.push(
            measure(
                label,
                Bench::ResolveCached,
                n,
                workers(n, || Resolve(c())),
                &keys.resolve_cached,
            )
            .await?,
        );
    }
    for &n in &args.concurrency {
        rows.push(
            measure(
                label,
                Bench::AccountUncached,
                n,
                workers(n, || Account(u())),
                &keys.login_uncached,
            )
            .await?,
        );
    }
    for &n in &args.concurrency {
        warm(workers(16, || Account(c())), &keys.login_set).await?;
        rows.push(
            measure(
                label,
                Bench::AccountCached,
                n,
                workers(n, || Account(c())),
                &keys.login_cached,
            )
            .await?,
        );
    }
    let options = mailstead_auth::AuthOptions::default;
    let auth_uncached = mailstead_auth::Authenticator::new(u(), options());
    let auth_cached = mailstead_auth::Authenticator::new(c(), options());
    for (keys, bench_uncached, bench_cached) in [
        (&keys.blf, Bench::AuthBlfUncached, Bench::AuthBlfCached),
        (
            &keys.argon,
            Bench::AuthArgonUncached,
            Bench::AuthArgonCached,
        ),
    ] {
        for &n in &args.concurrency {
            rows.push(
                measure(
                    label,
                    bench_uncached,
                    n,
                    workers(n, || Authenticate::new(auth_uncached.clone())),
                    keys,
                )
                .await?,
            );
        }
        for &n in &args.concurrency {
            // authenticate() reads the login through the same cache as account().
            warm(workers(16, || Account(c())), keys).await?;
            rows.push(
                measure(
                    label,
                    bench_cached,
                    n,
                    workers(n, || Authenticate::new(auth_cached.clone())),
                    keys,
                )
                .await?,
            );
        }
    }
    Ok(rows)
}

static NEXT_CPID: AtomicU32 = AtomicU32::new(1_000_000);

async fn connections<W, F, Fut>(n: usize, connect: F) -> Result<Vec<W>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<W>>,
{
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        all.push(connect().await?);
    }
    Ok(all)
}

/// The same measurements on Dovecot's auth service, reading the same MariaDB database.
async fn bench_dovecot(dbname: &str, keys: &Keys, args: &Args) -> Result<Vec<Row>> {
    use dovecot::{AuthPlain, Dovecot, PassLookup, UserLookup};
    let label = "dovecot";
    let mut rows = Vec::new();
    let mut errors = Vec::new();

    eprintln!("  dovecot: auth_cache_size = 0");
    let d = Dovecot::start(dbname, false).await?;
    let userdb = || async { anyhow::Ok(UserLookup(d.userdb().await?)) };
    let master = || async { anyhow::Ok(PassLookup(d.master().await?)) };
    let client = || async {
        anyhow::Ok(AuthPlain(
            d.client(NEXT_CPID.fetch_add(1, Ordering::Relaxed)).await?,
        ))
    };
    for &n in &args.concurrency {
        let w = connections(n, userdb).await?;
        rows.push(measure(label, Bench::ResolveUncached, n, w, &keys.resolve_uncached).await?);
    }
    for &n in &args.concurrency {
        let w = connections(n, master).await?;
        rows.push(measure(label, Bench::AccountUncached, n, w, &keys.login_uncached).await?);
    }
    for (keys, bench) in [
        (&keys.blf, Bench::AuthBlfUncached),
        (&keys.argon, Bench::AuthArgonUncached),
    ] {
        for &n in &args.concurrency {
            let w = connections(n, client).await?;
            rows.push(measure(label, bench, n, w, keys).await?);
        }
    }
    errors.extend(d.logged_errors());
    d.stop()?;

    eprintln!("  dovecot: auth_cache_size = 10M, auth_cache_ttl = 1 hour");
    let d = Dovecot::start(dbname, true).await?;
    let userdb = || async { anyhow::Ok(UserLookup(d.userdb().await?)) };
    let master = || async { anyhow::Ok(PassLookup(d.master().await?)) };
    let client = || async {
        anyhow::Ok(AuthPlain(
            d.client(NEXT_CPID.fetch_add(1, Ordering::Relaxed)).await?,
        ))
    };
    // The TTL is an hour: one warm-up per key set is enough.
    warm(connections(16, userdb).await?, &keys.resolve_set).await?;
    for &n in &args.concurrency {
        let w = connections(n, userdb).await?;
        rows.push(measure(label, Bench::ResolveCached, n, w, &keys.resolve_cached).await?);
    }
    warm(connections(16, master).await?, &keys.login_set).await?;
    for &n in &args.concurrency {
        let w = connections(n, master).await?;
        rows.push(measure(label, Bench::AccountCached, n, w, &keys.login_cached).await?);
    }
    for (keys, bench) in [
        (&keys.blf, Bench::AuthBlfCached),
        (&keys.argon, Bench::AuthArgonCached),
    ] {
        // The passdb cache fills on the first successful login of each user.
        warm(connections(16, client).await?, keys).await?;
        for &n in &args.concurrency {
            let w = connections(n, client).await?;
            rows.push(measure(label, bench, n, w, keys).await?);
        }
    }
    errors.extend(d.logged_errors());
    d.stop()?;
    if !errors.is_empty() {
        bail!("dovecot logged errors:\n{}", errors.join("\n"));
    }
    Ok(rows)
}

/// Proves through the API that the uncached handle reads the database on every call and the
/// cached one does not: deactivate a mailbox behind both handles' backs and look again.
async fn check_caching(pool: &AnyPool, uncached: &Directory, cached: &Directory) -> Result<String> {
    const PROBE: &str = "u001@d0000.bench.test";
    let delivers = |outcome: &Outcome| matches!(outcome, Outcome::Deliver(_));
    for directory in [uncached, cached] {
        ensure!(delivers(&directory.resolve(PROBE).await?.outcome));
        ensure!(directory.account(PROBE).await?.is_some());
    }
    sqlx::query("UPDATE mailboxes SET active = 0 WHERE local_part = 'u001' AND domain_id = 1")
        .execute(pool)
        .await?;
    let uncached_resolve = uncached.resolve(PROBE).await?.outcome.clone();
    let uncached_account = uncached.account(PROBE).await?;
    let cached_resolve = cached.resolve(PROBE).await?.outcome.clone();
    let cached_account = cached.account(PROBE).await?;
    sqlx::query("UPDATE mailboxes SET active = 1 WHERE local_part = 'u001' AND domain_id = 1")
        .execute(pool)
        .await?;
    cached.clear_cache();
    ensure!(
        uncached_resolve == Outcome::Reject(Rejection::MailboxInactive)
            && uncached_account.is_none(),
        "cache_capacity = 0 does not disable the cache: a deactivated mailbox still resolves \
         ({uncached_resolve:?}) / logs in ({})",
        uncached_account.is_some()
    );
    let held = delivers(&cached_resolve) && cached_account.is_some();
    Ok(if held {
        "verified: the cache_capacity = 0 handle saw a deactivation at once, the cached handle \
         kept its answers"
            .to_owned()
    } else {
        "the cache_capacity = 0 handle saw a deactivation at once; the cached handle did NOT \
         keep its answers (cached rows may not measure hits)"
            .to_owned()
    })
}

async fn bench_database(
    backend: Backend,
    url: &str,
    dbname: &str,
    version: String,
    hashes: &Hashes,
    keys: &Keys,
    args: &Args,
) -> Result<BackendRun> {
    let label = backend.name();
    let started = Instant::now();
    let (uncached, _) = Directory::open_and_migrate(options(url, false)).await?;
    let migrate = started.elapsed();
    let cached = Directory::open(options(url, true)).await?;
    let pool = dataset::seed_pool(url, backend).await?;
    eprintln!("[{label}] seeding");
    let seed = dataset::seed(&pool, backend, hashes).await?;
    eprintln!(
        "[{label}] seeded {} rows in {:.1} s",
        report::thousands(seed.rows as f64),
        seed.elapsed.as_secs_f64()
    );
    let cache_check = check_caching(&pool, &uncached, &cached).await?;
    let rows = bench_mailstead(label, &uncached, &cached, keys, args).await;
    uncached.close().await;
    cached.close().await;
    pool.close().await;
    let rows = rows?;
    let dovecot = if backend == Backend::MySql && !args.no_dovecot {
        eprintln!("[{label}] Dovecot on the same database");
        Some(
            bench_dovecot(dbname, keys, args)
                .await
                .map_err(|err| format!("{err:#}")),
        )
    } else {
        None
    };
    Ok(BackendRun {
        backend,
        version,
        migrate,
        seed,
        cache_check,
        rows,
        dovecot,
    })
}

async fn admin_pool(url: &str) -> Result<AnyPool> {
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .with_context(|| {
            format!("connecting to {url} (is the server running? use bench/directory.sh)")
        })
}

async fn run_backend(name: &str, hashes: &Hashes, keys: &Keys, args: &Args) -> Result<BackendRun> {
    let dbname = format!("mstbench_{}", std::process::id());
    match name {
        "sqlite" => {
            let dir = tempfile::Builder::new()
                .prefix("mstbench-sqlite-")
                .tempdir()?;
            let url = format!("sqlite://{}/directory.db", dir.path().display());
            let pool = AnyPoolOptions::new()
                .max_connections(1)
                .connect("sqlite::memory:")
                .await?;
            let version: String = sqlx::query_scalar("SELECT sqlite_version()")
                .fetch_one(&pool)
                .await?;
            pool.close().await;
            bench_database(
                Backend::Sqlite,
                &url,
                &dbname,
                format!("SQLite {version} (sqlx bundled), WAL"),
                hashes,
                keys,
                args,
            )
            .await
        }
        "postgres" | "mysql" => {
            let (backend, base, version_sql, drop_suffix) = if name == "postgres" {
                (
                    Backend::Postgres,
                    &args.postgres,
                    "SELECT version()",
                    " WITH (FORCE)",
                )
            } else {
                (
                    Backend::MySql,
                    &args.mysql,
                    "SELECT CONCAT('MariaDB ', VERSION())",
                    "",
                )
            };
            let admin = admin_pool(&format!("{base}/test")).await?;
            let version: String = sqlx::query_scalar(version_sql).fetch_one(&admin).await?;
            let version = version.split(" on ").next().unwrap_or_default().to_owned();
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {dbname}")))
                .execute(&admin)
                .await?;
            let result = bench_database(
                backend,
                &format!("{base}/{dbname}"),
                &dbname,
                version,
                hashes,
                keys,
                args,
            )
            .await;
            let dropped = sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {dbname}{drop_suffix}"
            )))
            .execute(&admin)
            .await;
            admin.close().await;
            let run = result?;
            dropped.with_context(|| format!("dropping {dbname}"))?;
            Ok(run)
        }
        other => bail!("unknown backend {other:?}; use sqlite, postgres, mysql"),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.concurrency.iter().all(|&n| n > 0),
        "concurrency must be at least 1"
    );
    ensure!(args.working_set > 0, "--working-set must be at least 1");
    sqlx::any::install_default_drivers();
    let started = Instant::now();
    let load_before = report::loadavg();
    let hashes = Hashes::make()?;
    let hash_cost = hashes.cost()?;
    let keys = Keys::new(&args);
    let dovecot_version = dovecot::version().unwrap_or_else(|err| format!("unknown ({err})"));
    let mut runs = Vec::new();
    for name in &args.backends {
        eprintln!("[{name}] starting");
        runs.push(run_backend(name, &hashes, &keys, &args).await?);
    }
    report::print(
        &runs,
        &report::Context {
            dovecot_version,
            blf: hashes.blf.chars().take(18).collect(),
            argon: hashes
                .argon
                .split('$')
                .take(4)
                .collect::<Vec<_>>()
                .join("$"),
            working_set: args.working_set,
            hash_cost,
            load_before,
            load_after: report::loadavg(),
            total: started.elapsed(),
        },
    );
    Ok(())
}
