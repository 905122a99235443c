//! Runs a fixed number of operations over a key list with N concurrent tokio tasks and
//! records each operation's latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;

use crate::dataset::Key;

/// One task's way of doing one operation. `Ok(false)` is a wrong answer (counted, not fatal);
/// `Err` stops the run.
pub trait Worker: Send + 'static {
    fn call(&mut self, key: &Key) -> impl Future<Output = Result<bool>> + Send;
}

pub struct Measurement {
    pub ops: u64,
    pub elapsed: Duration,
    /// Latency of each operation, in nanoseconds.
    pub hist: Histogram<u64>,
    /// Operations whose answer was not the one the data set implies.
    pub wrong: u64,
}

impl Measurement {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    pub fn p50_us(&self) -> f64 {
        self.hist.value_at_quantile(0.50) as f64 / 1000.0
    }

    pub fn p99_us(&self) -> f64 {
        self.hist.value_at_quantile(0.99) as f64 / 1000.0
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    // 1 ns to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000_000, 3).context("histogram bounds")
}

/// Task `t` of `workers.len()` does keys `t, t + n, t + 2n, …`; the clock runs from before the
/// first task starts until the last one ends.
pub async fn run<W: Worker>(workers: Vec<W>, keys: Arc<Vec<Key>>) -> Result<Measurement> {
    let tasks = workers.len();
    let started = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for (first, mut worker) in workers.into_iter().enumerate() {
        let keys = Arc::clone(&keys);
        handles.push(tokio::spawn(async move {
            let mut hist = new_histogram()?;
            let mut wrong = 0u64;
            for key in keys.iter().skip(first).step_by(tasks) {
                let op_started = Instant::now();
                let right = worker.call(key).await?;
                let nanos = u64::try_from(op_started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                hist.saturating_record(nanos.max(1));
                if !right {
                    wrong += 1;
                }
            }
            anyhow::Ok((hist, wrong))
        }));
    }
    let mut hist = new_histogram()?;
    let mut wrong = 0;
    for handle in handles {
        let (task_hist, task_wrong) = handle.await.context("benchmark task panicked")??;
        hist.add(&task_hist).context("merging histograms")?;
        wrong += task_wrong;
    }
    let elapsed = started.elapsed();
    Ok(Measurement {
        ops: hist.len(),
        elapsed,
        hist,
        wrong,
    })
}
