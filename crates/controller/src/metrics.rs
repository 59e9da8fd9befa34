//! Prometheus metrics of the controller (served on `/metrics`).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels naming what failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The action that failed, e.g. `create Job`.
    pub action: String,
}

/// Labels naming a phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// `Pending`, `Running`, ...
    pub phase: String,
}

/// Every metric the controller exports.
#[derive(Debug)]
pub struct Metrics {
    /// Reconciles run.
    pub reconciles: Counter,
    /// Failed reconciles by the action that failed.
    pub errors: Family<ErrorLabels, Counter>,
    /// Reconcile duration in seconds.
    pub reconcile_duration: Histogram,
    /// Runs by phase, as of the last scrape.
    pub runs: Family<PhaseLabels, Gauge>,
    /// Seconds from a run's creation to its Job's creation.
    pub job_creation_latency: Histogram,
    /// Seconds from training start to the end of the run.
    pub training_duration: Histogram,
}

impl Metrics {
    /// Register the metrics in `registry` under the `kubetrain_controller` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciles: Counter::default(),
            errors: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            runs: Family::default(),
            job_creation_latency: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            training_duration: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
        };
        let r = registry.sub_registry_with_prefix("kubetrain_controller");
        r.register("reconciles", "Reconciles run", metrics.reconciles.clone());
        r.register(
            "reconcile_errors",
            "Failed reconciles by the action that failed",
            metrics.errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            metrics.reconcile_duration.clone(),
        );
        r.register("runs", "TrainingRuns by phase", metrics.runs.clone());
        r.register(
            "job_creation_latency_seconds",
            "Time from a run's creation to its Job's creation",
            metrics.job_creation_latency.clone(),
        );
        r.register(
            "training_duration_seconds",
            "Time from a run's start to its end",
            metrics.training_duration.clone(),
        );
        metrics
    }

    /// Record one failed reconcile.
    pub fn error(&self, action: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                action: action.to_owned(),
            })
            .inc();
    }

    /// Record a duration in seconds.
    pub fn observe(histogram: &Histogram, duration: Duration) {
        histogram.observe(duration.as_secs_f64());
    }
}
