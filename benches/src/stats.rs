//! Latency samples and their summaries.

use std::time::Duration;

use serde_json::{Value, json};

/// Latencies of one measurement, and how long it ran.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
    /// Units of work done (events, checks): throughput is work / elapsed.
    pub work: u64,
    pub errors: u64,
}

impl Samples {
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
    }

    /// For in-process latencies: microseconds.
    pub fn percentile_us(&self, p: f64) -> f64 {
        self.percentile_ms(p) * 1000.0
    }

    /// [`Samples::json`] with percentiles in microseconds.
    pub fn json_us(&self) -> Value {
        json!({
            "work": self.work,
            "per_s": round(self.rate()),
            "p50_us": round(self.percentile_us(50.0)),
            "p99_us": round(self.percentile_us(99.0)),
            "p999_us": round(self.percentile_us(99.9)),
            "max_us": round(self.max_ms() * 1000.0),
        })
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies
            .iter()
            .max()
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }

    pub fn rate(&self) -> f64 {
        self.work as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn json(&self) -> Value {
        json!({
            "work": self.work,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed.as_secs_f64()),
            "per_s": round(self.rate()),
            "p50_ms": round(self.percentile_ms(50.0)),
            "p99_ms": round(self.percentile_ms(99.0)),
            "p999_ms": round(self.percentile_ms(99.9)),
            "max_ms": round(self.max_ms()),
        })
    }
}

pub fn round(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1000.0).round() / 1000.0
    } else {
        x
    }
}
