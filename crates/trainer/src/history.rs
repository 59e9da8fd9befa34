//! The loss per iteration, kept for `summary.json` (the dashboard's loss curve), bounded.
//!
//! # Expected flow
//! [`Recorder::new(sink)`](Recorder::new) wraps the sink training reports to: every report is
//! passed on unchanged and sampled into the history; [`Recorder::finish`] gives the points.
//!
//! # Guarantees
//! At most [`MAX_POINTS`] points whatever the number of iterations, evenly spaced: every
//! `stride`-th iteration is kept, and when the history is full every other point is dropped
//! and the stride doubles (so 10,000 iterations keep every 32nd). The first and the last
//! reported iterations are always kept.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::progress::{Iteration, ProgressSink};

/// The most points a history holds (a curve of 500 points is smooth at any screen width).
pub const MAX_POINTS: usize = 500;

/// One iteration's losses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LossPoint {
    /// The iteration (1-based), as progress reported it.
    pub iteration: u64,
    /// The training loss (see [`Iteration::loss`]); `null` when unknown.
    pub loss: Option<f64>,
    /// The validation loss, for fits that watch validation rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_loss: Option<f64>,
}

impl From<&Iteration> for LossPoint {
    fn from(report: &Iteration) -> Self {
        LossPoint {
            iteration: report.iteration,
            loss: report.loss.is_finite().then_some(report.loss),
            validation_loss: report.validation_loss.filter(|l| l.is_finite()),
        }
    }
}

#[derive(Debug)]
struct Sampled {
    points: Vec<LossPoint>,
    /// Keep every `stride`-th report (at least 1).
    stride: u64,
    seen: u64,
    last: Option<LossPoint>,
}

impl Sampled {
    fn new() -> Self {
        Sampled {
            points: Vec::new(),
            stride: 1,
            seen: 0,
            last: None,
        }
    }

    fn add(&mut self, point: LossPoint) {
        if self.seen.is_multiple_of(self.stride) {
            if self.points.len() == MAX_POINTS {
                // Keep points 0, 2, 4, ...: still every stride-th report, at twice the stride.
                let mut index = 0;
                self.points.retain(|_| {
                    index += 1;
                    index % 2 == 1
                });
                self.stride *= 2;
            }
            if self.seen.is_multiple_of(self.stride) {
                self.points.push(point.clone());
            }
        }
        self.seen += 1;
        self.last = Some(point);
    }

    fn finish(mut self) -> Vec<LossPoint> {
        if let Some(last) = self.last
            && self.points.last() != Some(&last)
        {
            if self.points.len() == MAX_POINTS {
                self.points.pop();
            }
            self.points.push(last);
        }
        self.points
    }
}

/// A [`ProgressSink`] that passes every report on and keeps a bounded loss history.
pub struct Recorder<'a> {
    inner: &'a dyn ProgressSink,
    sampled: Mutex<Sampled>,
}

impl<'a> Recorder<'a> {
    /// Record what training reports to `inner`.
    pub fn new(inner: &'a dyn ProgressSink) -> Self {
        Recorder {
            inner,
            sampled: Mutex::new(Sampled::new()),
        }
    }

    /// The history: at most [`MAX_POINTS`] points in iteration order, the last report last.
    pub fn finish(self) -> Vec<LossPoint> {
        self.sampled
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .finish()
    }
}

impl std::fmt::Debug for Recorder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("sampled", &self.sampled)
            .finish_non_exhaustive()
    }
}

impl ProgressSink for Recorder<'_> {
    fn report(&self, progress: &Iteration) {
        if let Ok(mut sampled) = self.sampled.lock() {
            sampled.add(LossPoint::from(progress));
        }
        self.inner.report(progress);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::progress::NoProgress;
    use std::time::Duration;

    fn record(iterations: u64) -> Vec<LossPoint> {
        let recorder = Recorder::new(&NoProgress);
        for iteration in 1..=iterations {
            recorder.report(&Iteration {
                iteration,
                total: iterations,
                loss: 1.0 / iteration as f64,
                validation_loss: (iteration % 2 == 0).then_some(2.0),
                elapsed: Duration::ZERO,
            });
        }
        recorder.finish()
    }

    #[test]
    fn short_histories_are_kept_whole() {
        let points = record(MAX_POINTS as u64);
        assert_eq!(points.len(), MAX_POINTS);
        assert_eq!(points[0].iteration, 1);
        assert_eq!(points[1].validation_loss, Some(2.0));
        assert_eq!(points[MAX_POINTS - 1].iteration, MAX_POINTS as u64);
    }

    #[test]
    fn long_histories_are_bounded_evenly_spaced_and_end_at_the_last_iteration() {
        for iterations in [MAX_POINTS as u64 + 1, 1_234, 10_000, 100_003] {
            let points = record(iterations);
            assert!(points.len() <= MAX_POINTS, "{iterations}: {}", points.len());
            assert!(
                points.len() > MAX_POINTS / 4,
                "{iterations}: {}",
                points.len()
            );
            assert_eq!(points[0].iteration, 1);
            assert_eq!(points.last().unwrap().iteration, iterations);
            let gaps: Vec<u64> = points
                .windows(2)
                .map(|w| w[1].iteration - w[0].iteration)
                .collect();
            // Every gap is the stride except the one before the appended last point.
            let stride = gaps[0];
            assert!(
                gaps[..gaps.len() - 1].iter().all(|&g| g == stride),
                "{iterations}: {gaps:?}"
            );
            assert!(*gaps.last().unwrap() <= stride);
            assert!(
                points
                    .iter()
                    .all(|p| p.loss == Some(1.0 / p.iteration as f64))
            );
        }
    }

    #[test]
    fn unknown_losses_are_null_not_nan() {
        let recorder = Recorder::new(&NoProgress);
        recorder.report(&Iteration {
            iteration: 1,
            total: 1,
            loss: f64::NAN,
            validation_loss: None,
            elapsed: Duration::ZERO,
        });
        let points = recorder.finish();
        assert_eq!(
            serde_json::to_string(&points).unwrap(),
            r#"[{"iteration":1,"loss":null}]"#
        );
    }
}
