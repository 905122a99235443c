//! The process-wide counters of Mailstead and their Prometheus text (`GET /metrics`).
//!
//! A crate of its own, depending on nothing of Mailstead's, so every crate can count without
//! a dependency cycle (the directory counts its cache, the store its deliveries, `net` its
//! connections, `auth` its logins).
//!
//! Counting is an atomic add on a handle made once: per-protocol handles are made when the
//! registry is, per-listener ones when the listener starts. No counting point takes a lock or
//! allocates. The registry is `prometheus-client` (the Prometheus project's own Rust client,
//! Apache-2.0 OR MIT): typed metrics on atomics and an explicit registry, where the `metrics`
//! facade would need a global recorder installed before the first handle is taken (a handle
//! taken earlier counts nothing, silently). Its histogram takes a lock for each observation,
//! so the delivery latency is kept in [`AtomicHistogram`] here and only encoded by the crate.

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
pub use prometheus_client::metrics::gauge::Gauge;

/// Labels of a family: `(name, value)` pairs.
type Labels = Vec<(&'static str, String)>;

/// Who logs in or hands over a message, as the `protocol` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Smtp,
    Lmtp,
    Submission,
    Imap,
    Pop3,
    ManageSieve,
    Http,
    Cli,
}

impl Protocol {
    const ALL: [Protocol; 8] = [
        Protocol::Smtp,
        Protocol::Lmtp,
        Protocol::Submission,
        Protocol::Imap,
        Protocol::Pop3,
        Protocol::ManageSieve,
        Protocol::Http,
        Protocol::Cli,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Lmtp => "lmtp",
            Protocol::Submission => "submission",
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::ManageSieve => "managesieve",
            Protocol::Http => "http",
            Protocol::Cli => "cli",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds (seconds) of the delivery latency buckets: a fsync takes a millisecond on a
/// good disk and seconds on a busy one.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A histogram on atomics: an observation is three atomic adds, never a lock. Sums are kept
/// in microseconds, so they add exactly.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    buckets: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl AtomicHistogram {
    fn new(bounds: &'static [f64]) -> AtomicHistogram {
        AtomicHistogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = self
            .bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(self.bounds.len());
        if let Some(count) = self.buckets.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (index, count) in self.buckets.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let bound = self.bounds.get(index).copied().unwrap_or(f64::MAX);
            buckets.push((bound, cumulative));
        }
        // Read apart from the buckets, so a scrape during an observation may be off by one
        // in flight; Prometheus tolerates that.
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, cumulative, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    connections_open: Family<Labels, Gauge>,
    sessions_logged_in: Family<Labels, Gauge>,
    logins_ok: Vec<Counter>,
    logins_failed: Vec<Counter>,
    messages_received: Vec<Counter>,
    delivered: Counter,
    deferred: Counter,
    bounced: Counter,
    delivery_latency: &'static AtomicHistogram,
    queue_size: Gauge,
    cache_hits: Counter,
    cache_misses: Counter,
    events_dropped: Counter,
}

static DELIVERY_LATENCY: LazyLock<AtomicHistogram> =
    LazyLock::new(|| AtomicHistogram::new(&LATENCY_BUCKETS));

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// A histogram registered by reference: the registry owns its metrics, the counting points
/// reach this one through a static.
#[derive(Debug)]
struct Shared(&'static AtomicHistogram);

impl EncodeMetric for Shared {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        AtomicHistogram::TYPE
    }
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mailstead");
        let connections_open = Family::<Labels, Gauge>::default();
        registry.register(
            "connections_open",
            "Connections open, per listener",
            connections_open.clone(),
        );
        let sessions_logged_in = Family::<Labels, Gauge>::default();
        registry.register(
            "sessions_logged_in",
            "Sessions logged in, per protocol",
            sessions_logged_in.clone(),
        );
        let logins = Family::<Labels, Counter>::default();
        registry.register(
            "logins",
            "Logins checked by the login service, per protocol and result",
            logins.clone(),
        );
        let per_result = |result: &'static str| -> Vec<Counter> {
            Protocol::ALL
                .iter()
                .map(|protocol| {
                    logins
                        .get_or_create(&vec![
                            ("protocol", protocol.name().to_owned()),
                            ("result", result.to_owned()),
                        ])
                        .clone()
                })
                .collect()
        };
        let logins_ok = per_result("ok");
        let logins_failed = per_result("failed");
        let received = Family::<Labels, Counter>::default();
        registry.register(
            "messages_received",
            "Messages accepted (answered 250), per protocol",
            received.clone(),
        );
        let messages_received = Protocol::ALL
            .iter()
            .map(|protocol| {
                received
                    .get_or_create(&vec![("protocol", protocol.name().to_owned())])
                    .clone()
            })
            .collect();
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let delivered = counter(
            &mut registry,
            "messages_delivered",
            "Copies written into a local Maildir (fsync'd)",
        );
        let deferred = counter(
            &mut registry,
            "messages_deferred",
            "Queued recipients whose attempt failed for now and who wait for a retry",
        );
        let bounced = counter(
            &mut registry,
            "messages_bounced",
            "Queued recipients given up (a permanent failure or too old)",
        );
        let delivery_latency: &'static AtomicHistogram = &DELIVERY_LATENCY;
        registry.register(
            "delivery_latency_seconds",
            "From the end of a message's transfer to its copy fsync'd in a local Maildir",
            Shared(delivery_latency),
        );
        let queue_size = Gauge::default();
        registry.register(
            "queue_messages",
            "Messages in the outbound queue",
            queue_size.clone(),
        );
        let cache_hits = counter(
            &mut registry,
            "directory_cache_hits",
            "Directory answers served from the cache",
        );
        let cache_misses = counter(
            &mut registry,
            "directory_cache_misses",
            "Directory answers that had to ask the database",
        );
        let events_dropped = counter(
            &mut registry,
            "events_dropped",
            "Mail events not written to the event log because its writer fell behind",
        );
        Metrics {
            registry,
            connections_open,
            sessions_logged_in,
            logins_ok,
            logins_failed,
            messages_received,
            delivered,
            deferred,
            bounced,
            delivery_latency,
            queue_size,
            cache_hits,
            cache_misses,
            events_dropped,
        }
    }
}

fn metrics() -> &'static Metrics {
    &METRICS
}

/// The Prometheus text (version 0.0.4) of every metric, for `GET /metrics`.
pub fn render() -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &metrics().registry);
    text
}

/// The gauge of one listener's open connections (`protocol`: "imap", "smtp" …; `address`:
/// where it listens). Taken once when the listener starts.
pub fn connections_open(protocol: &str, address: &str) -> Gauge {
    metrics()
        .connections_open
        .get_or_create(&vec![
            ("protocol", protocol.to_owned()),
            ("address", address.to_owned()),
        ])
        .clone()
}

/// The gauge of logged-in sessions of one protocol. Taken once when a listener starts.
pub fn sessions_logged_in(protocol: &str) -> Gauge {
    metrics()
        .sessions_logged_in
        .get_or_create(&vec![("protocol", protocol.to_owned())])
        .clone()
}

/// A login the login service decided.
pub fn login(protocol: Protocol, ok: bool) {
    let counters = if ok {
        &metrics().logins_ok
    } else {
        &metrics().logins_failed
    };
    if let Some(counter) = counters.get(protocol.index()) {
        counter.inc();
    }
}

/// A message accepted from a client (the `250` sent).
pub fn message_received(protocol: Protocol) {
    if let Some(counter) = metrics().messages_received.get(protocol.index()) {
        counter.inc();
    }
}

/// A copy fsync'd into a local Maildir; `since` is when its transfer ended, when known.
pub fn message_delivered(since: Option<std::time::Instant>) {
    metrics().delivered.inc();
    if let Some(since) = since {
        metrics().delivery_latency.observe(since.elapsed());
    }
}

/// A queued recipient that waits for a retry.
pub fn recipient_deferred() {
    metrics().deferred.inc();
}

/// A queued recipient given up.
pub fn recipient_bounced() {
    metrics().bounced.inc();
}

/// The queue's size, set at start and moved by each message added or removed.
pub fn queue_size_set(messages: usize) {
    metrics()
        .queue_size
        .set(i64::try_from(messages).unwrap_or(i64::MAX));
}

pub fn queue_message_added() {
    metrics().queue_size.inc();
}

pub fn queue_message_removed() {
    metrics().queue_size.dec();
}

/// A mail event the event log's bounded channel had no room for.
pub fn event_dropped() {
    metrics().events_dropped.inc();
}

/// A directory answer served from the cache (`true`) or fetched.
pub fn directory_cache(hit: bool) {
    if hit {
        metrics().cache_hits.inc();
    } else {
        metrics().cache_misses.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_prometheus_text() {
        login(Protocol::Imap, false);
        login(Protocol::Imap, true);
        login(Protocol::Imap, true);
        message_received(Protocol::Lmtp);
        let open = connections_open("imap", "127.0.0.1:143");
        open.inc();
        message_delivered(Some(std::time::Instant::now()));
        let text = render();
        for line in [
            "# TYPE mailstead_logins_total counter",
            "mailstead_logins_total{protocol=\"imap\",result=\"failed\"} 1",
            "mailstead_logins_total{protocol=\"imap\",result=\"ok\"} 2",
            "mailstead_messages_received_total{protocol=\"lmtp\"} 1",
            "mailstead_connections_open{protocol=\"imap\",address=\"127.0.0.1:143\"} 1",
            "mailstead_messages_delivered_total 1",
            "mailstead_delivery_latency_seconds_count 1",
            "mailstead_delivery_latency_seconds_bucket{le=\"+Inf\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in:\n{text}"
            );
        }
    }

    #[test]
    fn the_histogram_puts_an_observation_in_the_first_bucket_that_holds_it() {
        static BOUNDS: [f64; 2] = [0.001, 0.1];
        let histogram = AtomicHistogram::new(&BOUNDS);
        histogram.observe(Duration::from_micros(500));
        histogram.observe(Duration::from_millis(50));
        histogram.observe(Duration::from_secs(3));
        let counts: Vec<u64> = histogram
            .buckets
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, [1, 1, 1]);
        assert_eq!(histogram.sum_micros.load(Ordering::Relaxed), 3_050_500);
    }
}
