//! What a trainer reports: the JSON-lines event protocol of `kubetrain train --progress json`
//! and the status fields the trainer owns.
//!
//! One type serves the writer (the trainer) and every reader (the in-cluster status reporter,
//! `kubetrain local`'s process pool), so the protocol cannot drift between them.
//!
//! ```json
//! {"event":"progress","iteration":3,"total":100,"loss":0.31,"elapsedSeconds":0.02}
//! {"event":"completed","results":{"progress":{..},"metrics":{..},"model":{..},"dataset":{..}},"summary":{..}}
//! ```
//!
//! # Guarantees
//! Readers ignore lines that are not events (a trainer may log to stdout) and events of a kind
//! they do not know, so a newer trainer can add kinds without breaking an older reader.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::exit_code::{self, ErrorClass};
use crate::{DatasetSummary, FeatureWeight, Metrics, ModelRef, Progress, TrainerError};

/// One solver iteration, reported as it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Iteration {
    /// Iterations done so far (1-based).
    pub iteration: u64,
    /// The iteration budget (`maxIterations`; 1 for an exact solve); the run may converge
    /// earlier.
    pub total: u64,
    /// The objective divided by the number of training rows: the mean loss (log loss, or half
    /// the squared error for regression) plus the penalty term. NaN when unknown (a custom
    /// program may report none), which JSON writes as `null`.
    #[serde(deserialize_with = "nan_if_null")]
    pub loss: f64,
    /// The same loss on the validation rows, for fits that watch it (boosted trees and
    /// forests, every iteration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_loss: Option<f64>,
    /// Time since fitting started.
    #[serde(rename = "elapsedSeconds", with = "seconds")]
    pub elapsed: Duration,
}

impl Iteration {
    /// `status.progress` for this report, observed at `now`: percent done (one decimal) and
    /// the seconds left if every remaining iteration takes the mean time so far.
    pub fn status_progress(&self, now: Timestamp) -> Progress {
        let total = self.total.max(1);
        let done = self.iteration.min(total);
        let per_iteration = self.elapsed.as_secs_f64() / done.max(1) as f64;
        Progress {
            iteration: self.iteration,
            total: self.total,
            percent: (done as f64 * 100.0 / total as f64 * 10.0).round() / 10.0,
            loss: self.loss.is_finite().then_some(self.loss),
            validation_loss: self.validation_loss.filter(|l| l.is_finite()),
            estimated_remaining_seconds: Some(per_iteration * (total - done) as f64),
            updated: Some(Time(now)),
        }
    }
}

/// A number, or NaN for `null` (how serde_json writes a non-finite number).
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(d)?;
        Ok(Duration::try_from_secs_f64(seconds).unwrap_or_default())
    }
}

/// The status fields a trainer owns after a successful attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainerResults {
    /// The finished fit: every iteration it used, 100 %, the final loss.
    pub progress: Progress,
    /// Quality of the model on the rows it was evaluated on.
    pub metrics: Metrics,
    /// Where the model is stored.
    pub model: ModelRef,
    /// What was read (custom programs read the data themselves: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetSummary>,
    /// The features the model leans on most (see `TrainingRunStatus::top_features`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_features: Vec<FeatureWeight>,
}

/// One line of `kubetrain train --progress json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum TrainerEvent {
    /// A solver iteration ended.
    Progress(Iteration),
    /// Training succeeded; the model and summary are stored.
    Completed {
        /// The status fields the trainer owns.
        results: Box<TrainerResults>,
        /// The whole `summary.json`, for people and tools reading the stream.
        summary: serde_json::Value,
    },
}

impl TrainerEvent {
    /// The event on one line of JSON (no newline).
    pub fn to_line(&self) -> String {
        // Every field is a plain value: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The event on `line`, or `None` for anything else (log output, unknown events).
    pub fn parse(line: &str) -> Option<TrainerEvent> {
        serde_json::from_str(line).ok()
    }
}

/// Most metrics one custom program may report (the status is stored in etcd).
pub const MAX_PROGRAM_METRICS: usize = 64;

/// One line a custom program prints (`spec.custom`, contract version 1): progress while it
/// trains, its final metrics once. Lenient where the built-in trainer's [`TrainerEvent`]s are
/// complete: `loss` and `elapsedSeconds` may be left out, and unknown fields are ignored.
///
/// ```json
/// {"event":"progress","iteration":3,"total":100,"loss":0.31}
/// {"event":"metrics","metrics":{"accuracy":0.93,"f1":0.91}}
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum ProgramEvent {
    /// An iteration (epoch, tree, step) ended.
    Progress(ProgramProgress),
    /// The final metrics: numbers by any names.
    Metrics {
        /// Metric name to value.
        metrics: std::collections::BTreeMap<String, f64>,
    },
}

/// A custom program's progress report.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgramProgress {
    /// Iterations done so far (1-based).
    pub iteration: u64,
    /// Iterations planned.
    pub total: u64,
    /// Training loss, when the program has one.
    #[serde(default)]
    pub loss: Option<f64>,
    /// Validation loss, when the program has one.
    #[serde(default)]
    pub validation_loss: Option<f64>,
    /// Seconds since the program started training; the wrapper's clock when left out.
    #[serde(default)]
    pub elapsed_seconds: Option<f64>,
}

/// How a custom program's stdout line reads.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgramLine {
    /// An event of the contract.
    Event(ProgramEvent),
    /// A JSON object naming a known event (`progress`, `metrics`) that does not have the
    /// event's shape: the reason, for a warning (the line is still logged).
    Malformed(String),
    /// Anything else: a log line.
    Log,
}

impl ProgramLine {
    /// Read one line of a custom program's stdout.
    pub fn parse(line: &str) -> ProgramLine {
        let trimmed = line.trim();
        if !trimmed.starts_with('{') {
            return ProgramLine::Log;
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(trimmed) else {
            return ProgramLine::Log;
        };
        let kind = value.get("event").and_then(serde_json::Value::as_str);
        if !matches!(kind, Some("progress" | "metrics")) {
            return ProgramLine::Log;
        }
        match serde_json::from_value::<ProgramEvent>(value) {
            Ok(event) => ProgramLine::Event(event),
            Err(error) => ProgramLine::Malformed(error.to_string()),
        }
    }
}

impl ProgramProgress {
    /// The report as an [`Iteration`], `elapsed` standing in when the program gave no time. A
    /// missing loss is NaN, which status progress leaves out.
    pub fn iteration(&self, elapsed: Duration) -> Iteration {
        Iteration {
            iteration: self.iteration,
            total: self.total,
            loss: self.loss.unwrap_or(f64::NAN),
            validation_loss: self.validation_loss,
            elapsed: self
                .elapsed_seconds
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .unwrap_or(elapsed),
        }
    }
}

impl Metrics {
    /// `status.metrics` of the metrics a custom program reported: all of them in `reported`
    /// (at most [`MAX_PROGRAM_METRICS`], finite ones), and the ones the built-in trainers
    /// also report (`accuracy`, `log_loss`, `macro_f1`, `rmse`, `mae`, `r2`, in snake or camel
    /// case) in their own fields, with `score` the accuracy, else r2.
    pub fn from_program(reported: &std::collections::BTreeMap<String, f64>) -> Metrics {
        let reported: std::collections::BTreeMap<String, f64> = reported
            .iter()
            .filter(|(_, v)| v.is_finite())
            .take(MAX_PROGRAM_METRICS)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let get = |names: &[&str]| names.iter().find_map(|n| reported.get(*n).copied());
        let accuracy = get(&["accuracy"]);
        let r2 = get(&["r2"]);
        let (score, score_name) = match (accuracy, r2) {
            (Some(a), _) => (Some(a), Some("accuracy".to_owned())),
            (None, Some(r)) => (Some(r), Some("r2".to_owned())),
            (None, None) => (None, None),
        };
        Metrics {
            score,
            score_name,
            accuracy,
            log_loss: get(&["log_loss", "logLoss"]),
            macro_f1: get(&["macro_f1", "macroF1"]),
            rmse: get(&["rmse"]),
            mae: get(&["mae"]),
            r2,
            reported,
            ..Metrics::default()
        }
    }
}

impl TrainerError {
    /// The report of an attempt that failed with `error`, classified as `class`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> TrainerError {
        TrainerError {
            reason: class.reason().to_owned(),
            message: message.into(),
            exit_code: class.exit_code(),
        }
    }

    /// What a trainer process that ended without reporting said about itself: the class of
    /// its exit `code` (`None`: killed without one), and the last `error: ...` line of its
    /// `stderr` (else its last non-empty line). `exited_zero`: it exited 0 yet reported no
    /// results, which is a failure of its own.
    pub fn from_exit(code: Option<i32>, exited_zero: bool, stderr: &str) -> TrainerError {
        let code = code.unwrap_or(exit_code::INTERNAL);
        let said = stderr
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("error: "))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .map(str::trim)
            .map(str::to_owned);
        let message = match (said, exited_zero) {
            (_, true) => "the trainer exited without reporting its results".to_owned(),
            (Some(said), _) => said,
            (None, _) if code > 128 => format!("the trainer was killed by signal {}", code - 128),
            (None, _) => format!("the trainer exited with code {code}"),
        };
        TrainerError {
            reason: ErrorClass::of_exit_code(code).reason().to_owned(),
            message,
            exit_code: code,
        }
    }

    /// The class its exit code stands for.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::of_exit_code(self.exit_code)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn progress_has_percent_and_an_estimate() {
        let p = Iteration {
            iteration: 25,
            total: 200,
            loss: 0.31,
            validation_loss: None,
            elapsed: Duration::from_secs(5),
        }
        .status_progress(at());
        assert_eq!(p.percent, 12.5);
        assert_eq!(p.estimated_remaining_seconds, Some(35.0));
        assert_eq!(p.loss, Some(0.31));
        assert_eq!(p.updated, Some(Time(at())));
    }

    #[test]
    fn progress_lines_round_trip_and_other_lines_are_not_events() {
        let line =
            r#"{"event":"progress","iteration":25,"total":200,"loss":0.31,"elapsedSeconds":5.0}"#;
        let Some(TrainerEvent::Progress(p)) = TrainerEvent::parse(line) else {
            panic!("a progress line")
        };
        assert_eq!(p.elapsed, Duration::from_secs(5));
        let back: serde_json::Value =
            serde_json::from_str(&TrainerEvent::Progress(p).to_line()).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(line).unwrap()
        );
        assert!(TrainerEvent::parse("not json").is_none());
        assert!(TrainerEvent::parse(r#"{"event":"other"}"#).is_none());
    }

    #[test]
    fn completed_events_carry_the_results() {
        let results = TrainerResults {
            progress: Progress::default(),
            metrics: Metrics::default(),
            model: ModelRef {
                uri: "s3://m/model.json".into(),
                sha256: "ab".into(),
                bytes: 2,
            },
            dataset: Some(DatasetSummary::default()),
            top_features: Vec::new(),
        };
        let event = TrainerEvent::Completed {
            results: Box::new(results.clone()),
            summary: serde_json::json!({"evaluatedOn": "validation"}),
        };
        let line = event.to_line();
        assert!(line.starts_with(r#"{"event":"completed""#), "{line}");
        assert_eq!(TrainerEvent::parse(&line), Some(event));
    }

    #[test]
    fn program_lines_are_events_malformed_events_or_log_lines() {
        let ProgramLine::Event(ProgramEvent::Progress(p)) =
            ProgramLine::parse(r#"{"event":"progress","iteration":3,"total":100,"loss":0.31}"#)
        else {
            panic!("a progress line")
        };
        let iteration = p.iteration(Duration::from_secs(2));
        assert_eq!(
            (iteration.iteration, iteration.total, iteration.loss),
            (3, 100, 0.31)
        );
        assert_eq!(iteration.elapsed, Duration::from_secs(2));
        let bare = ProgramLine::parse(r#"{"event":"progress","iteration":1,"total":2}"#);
        let ProgramLine::Event(ProgramEvent::Progress(bare)) = bare else {
            panic!("{bare:?}")
        };
        let without_loss = bare.iteration(Duration::ZERO);
        let progress = without_loss.status_progress(at());
        assert_eq!((progress.percent, progress.loss), (50.0, None));
        // As kubetrain local reads it from the wrapper: the unknown loss survives the line.
        let line = TrainerEvent::Progress(without_loss).to_line();
        let Some(TrainerEvent::Progress(back)) = TrainerEvent::parse(&line) else {
            panic!("{line} is not a progress event")
        };
        assert!(back.loss.is_nan() && back.iteration == 1, "{line}");
        let ProgramLine::Event(ProgramEvent::Metrics { metrics }) =
            ProgramLine::parse(r#"{"event":"metrics","metrics":{"accuracy":0.93,"f1":0.91}}"#)
        else {
            panic!("a metrics line")
        };
        assert_eq!(metrics.len(), 2);
        for malformed in [
            r#"{"event":"progress","iteration":"three","total":100}"#,
            r#"{"event":"progress","iteration":1}"#,
            r#"{"event":"metrics","metrics":{"accuracy":"high"}}"#,
        ] {
            assert!(
                matches!(ProgramLine::parse(malformed), ProgramLine::Malformed(_)),
                "{malformed}"
            );
        }
        for log in [
            "epoch 3 done",
            "{not json",
            r#"{"event":"other"}"#,
            r#"{"a":1}"#,
            "",
        ] {
            assert_eq!(ProgramLine::parse(log), ProgramLine::Log, "{log}");
        }
    }

    #[test]
    fn program_metrics_fill_the_known_fields_and_keep_every_name() {
        let reported = [("accuracy", 0.9), ("f1", 0.8), ("logLoss", 0.3)]
            .map(|(k, v)| (k.to_owned(), v))
            .into_iter()
            .collect();
        let m = Metrics::from_program(&reported);
        assert_eq!(
            (m.score, m.score_name.as_deref()),
            (Some(0.9), Some("accuracy"))
        );
        assert_eq!((m.accuracy, m.log_loss, m.r2), (Some(0.9), Some(0.3), None));
        assert_eq!(m.reported.len(), 3);
        let regression = [("r2".to_owned(), 0.5), ("rmse".to_owned(), 2.0)]
            .into_iter()
            .collect();
        let m = Metrics::from_program(&regression);
        assert_eq!((m.score, m.score_name.as_deref()), (Some(0.5), Some("r2")));
        let many = (0..100)
            .map(|i| (format!("m{i:03}"), f64::from(i)))
            .collect();
        assert_eq!(
            Metrics::from_program(&many).reported.len(),
            MAX_PROGRAM_METRICS
        );
    }

    #[test]
    fn trainer_errors_are_classified_by_exit_code() {
        let bad = TrainerError::from_exit(
            Some(65),
            false,
            "some log\nerror: /d.csv: row 2 (line 3), column 'f1': 'abc' is not a number\n",
        );
        assert_eq!(bad.reason, "BadInput");
        assert_eq!(bad.exit_code, 65);
        assert_eq!(
            bad.message,
            "/d.csv: row 2 (line 3), column 'f1': 'abc' is not a number"
        );
        assert_eq!(
            TrainerError::from_exit(Some(75), false, "").reason,
            "Transient"
        );
        assert_eq!(
            TrainerError::from_exit(Some(2), false, "").reason,
            "BadInput"
        );
        assert_eq!(
            TrainerError::from_exit(Some(137), false, "").message,
            "the trainer was killed by signal 9"
        );
        assert_eq!(
            TrainerError::from_exit(Some(0), true, "").message,
            "the trainer exited without reporting its results"
        );
        let reported = TrainerError::new(ErrorClass::Transient, "storage unreachable");
        assert_eq!(reported.exit_code, exit_code::TRANSIENT);
        assert_eq!(reported.class(), ErrorClass::Transient);
    }
}
