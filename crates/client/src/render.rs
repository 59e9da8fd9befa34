//! Runs as text: kubectl-style tables, the summary of a finished run, JSON and YAML.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
pub use k8s_openapi::jiff::Timestamp;
use kubetrain_api::{Phase, TrainingRun, condition};

/// The table's columns, as kubectl would title them.
pub const COLUMNS: [&str; 6] = ["NAME", "PHASE", "PROGRESS", "SCORE", "AGE", "MESSAGE"];

/// One table row of a run, at time `now`.
pub fn row(run: &TrainingRun, now: Timestamp) -> [String; 6] {
    let status = run.status.as_ref();
    let phase = status
        .and_then(|status| status.phase)
        .map_or("Pending", Phase::as_str);
    let progress = status
        .and_then(|status| status.progress.as_ref())
        .map(|p| {
            if p.total > 0 {
                format!("{}/{} ({:.0}%)", p.iteration, p.total, p.percent)
            } else {
                format!("{:.0}%", p.percent)
            }
        })
        .unwrap_or_default();
    // The task's primary score and its name; runs trained before scores had names show
    // their accuracy.
    let score = status
        .and_then(|status| status.metrics.as_ref())
        .and_then(|metrics| match (metrics.score, &metrics.score_name) {
            (Some(score), Some(name)) => Some(format!("{score:.4} ({name})")),
            _ => metrics.accuracy.map(|a| format!("{a:.4} (accuracy)")),
        })
        .unwrap_or_default();
    let age = run
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|created| age(created, now))
        .unwrap_or_else(|| "<unknown>".to_owned());
    let message = status
        .and_then(|status| status.message.as_deref())
        .unwrap_or_default()
        .replace(['\n', '\r'], " ");
    [
        run.metadata.name.clone().unwrap_or_default(),
        phase.to_owned(),
        progress,
        score,
        age,
        message,
    ]
}

/// A table of runs like `kubectl get`: a header, columns three spaces apart, no trailing
/// blanks. No runs give `No runs found in namespace <ns>.` instead.
pub fn table(runs: &[TrainingRun], namespace: &str, now: Timestamp) -> String {
    if runs.is_empty() {
        return format!("No runs found in namespace {namespace}.\n");
    }
    let rows: Vec<[String; 6]> = std::iter::once(COLUMNS.map(str::to_owned))
        .chain(runs.iter().map(|run| row(run, now)))
        .collect();
    let mut widths = [0usize; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The age of something created at `created`, as kubectl prints it (`45s`, `3m20s`, `5h`,
/// `2d3h`, `40d`).
pub fn age(created: &Time, now: Timestamp) -> String {
    let seconds = now.as_second() - created.0.as_second();
    if seconds < 0 {
        return "0s".to_owned();
    }
    let minutes = seconds / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    let years = days / 365;
    if seconds < 120 {
        format!("{seconds}s")
    } else if minutes < 10 {
        match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        }
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        }
    } else if days < 365 * 2 {
        format!("{days}d")
    } else if years < 8 {
        format!("{years}y{}d", days % 365)
    } else {
        format!("{years}y")
    }
}

/// Why a run failed or was cancelled: `status.message`, else the Failed condition's reason
/// and message, else the trainer's own error.
pub fn failure_reason(run: &TrainingRun) -> String {
    let Some(status) = run.status.as_ref() else {
        return "no reason given".to_owned();
    };
    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
        return message.to_owned();
    }
    if let Some(failed) = status
        .conditions
        .iter()
        .find(|c| c.type_ == condition::FAILED && c.status == "True")
    {
        return match (failed.reason.as_str(), failed.message.as_str()) {
            (reason, "") => reason.to_owned(),
            ("", message) => message.to_owned(),
            (reason, message) => format!("{reason}: {message}"),
        };
    }
    if let Some(error) = &status.trainer_error {
        return format!("{}: {}", error.reason, error.message);
    }
    "no reason given".to_owned()
}

/// `trainingrun/<name> <Phase>: <why>` for a run that did not succeed, without repeating
/// the phase when the reason starts with it.
pub fn outcome(run: &TrainingRun) -> String {
    let name = run.metadata.name.as_deref().unwrap_or_default();
    let phase = run
        .status
        .as_ref()
        .and_then(|status| status.phase)
        .map_or("Pending", Phase::as_str);
    let reason = failure_reason(run);
    let reason = reason
        .strip_prefix(phase)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(&reason);
    format!("trainingrun/{name} {phase}: {reason}")
}

/// What a finished run produced, one `key  value` line each: how long it took, the metrics,
/// the model's URI and SHA-256.
pub fn summary(run: &TrainingRun) -> String {
    let name = run.metadata.name.as_deref().unwrap_or_default();
    let status = run.status.clone().unwrap_or_default();
    let phase = status.phase.map_or("Pending", Phase::as_str);
    let mut lines: Vec<(String, String)> = Vec::new();
    if let (Some(start), Some(end)) = (&status.start_time, &status.completion_time) {
        let millis = end.0.as_millisecond() - start.0.as_millisecond();
        lines.push((
            "duration".into(),
            format!("{:.1}s", millis.max(0) as f64 / 1000.0),
        ));
    }
    if let Some(metrics) = &status.metrics {
        let mut push = |key: &str, value: Option<f64>| {
            if let Some(value) = value {
                lines.push((key.to_owned(), format!("{value:.4}")));
            }
        };
        push("accuracy", metrics.accuracy);
        push("log loss", metrics.log_loss);
        push("macro F1", metrics.macro_f1);
        push("r2", metrics.r2);
        push("rmse", metrics.rmse);
        push("mae", metrics.mae);
        push("training loss", metrics.training_loss);
        // A custom program's own metrics, by its names (the ones above already shown).
        const SHOWN: [&str; 9] = [
            "accuracy",
            "log_loss",
            "logLoss",
            "macro_f1",
            "macroF1",
            "r2",
            "rmse",
            "mae",
            "training_loss",
        ];
        for (name, value) in &metrics.reported {
            if !SHOWN.contains(&name.as_str()) {
                push(name, Some(*value));
            }
        }
        if let Some(on) = &metrics.evaluated_on {
            let rows = metrics
                .validation_rows
                .map(|rows| format!(" ({rows} rows)"))
                .unwrap_or_default();
            lines.push(("evaluated on".into(), format!("{on}{rows}")));
        }
        if let Some(iterations) = metrics.iterations {
            let converged = match metrics.converged {
                Some(true) => " (converged)",
                Some(false) => " (not converged: raise maxIterations?)",
                None => "",
            };
            lines.push(("iterations".into(), format!("{iterations}{converged}")));
        }
    }
    if let Some(dataset) = &status.dataset {
        lines.push((
            "dataset".into(),
            format!(
                "{} rows, {} features, {} classes",
                dataset.rows, dataset.features, dataset.classes
            ),
        ));
    }
    if let Some(model) = &status.model {
        lines.push(("model".into(), model.uri.clone()));
        lines.push(("sha256".into(), model.sha256.clone()));
        lines.push(("bytes".into(), model.bytes.to_string()));
    }
    let mut out = format!("trainingrun/{name} {phase}\n");
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in lines {
        out.push_str(&format!("  {key:width$}  {value}\n"));
    }
    out
}

/// One run as pretty JSON (with a final newline).
pub fn json<T: serde::Serialize>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(value).map(|mut text| {
        text.push('\n');
        text
    })
}

/// One run as YAML.
pub fn yaml<T: serde::Serialize>(value: &T) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn run(name: &str, created: &str, status: serde_json::Value) -> TrainingRun {
        TrainingRun::test(name)
            .in_ns("default")
            .created(created.parse().unwrap())
            .with_status(&status.to_string())
    }

    fn now() -> Timestamp {
        "2026-11-25T16:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_table_lines_up_like_kubectl() {
        let runs = [
            run(
                "breast-cancer",
                "2026-11-25T15:59:15Z",
                json!({"phase": "Succeeded", "progress": {"iteration": 23, "total": 200, "percent": 100.0},
                       "metrics": {"accuracy": 0.967}}),
            ),
            run(
                "bad",
                "2026-11-25T13:00:00Z",
                json!({"phase": "Failed", "message": "BadInput: row 2 (line 3), column 'f1': 'abc' is not a number"}),
            ),
            run("new", "2026-11-25T16:00:00Z", json!({})),
        ];
        let expected = "\
NAME            PHASE       PROGRESS        SCORE               AGE   MESSAGE
breast-cancer   Succeeded   23/200 (100%)   0.9670 (accuracy)   45s
bad             Failed                                          3h    BadInput: row 2 (line 3), column 'f1': 'abc' is not a number
new             Pending                                         0s
";
        assert_eq!(table(&runs, "default", now()), expected);
    }

    #[test]
    fn an_empty_list_says_so() {
        assert_eq!(table(&[], "ml", now()), "No runs found in namespace ml.\n");
    }

    #[test]
    fn ages_read_like_kubectl() {
        let at = |s: &str| Time(s.parse().unwrap());
        assert_eq!(age(&at("2026-11-25T15:59:01Z"), now()), "59s");
        assert_eq!(age(&at("2026-11-25T15:56:40Z"), now()), "3m20s");
        assert_eq!(age(&at("2026-11-25T15:30:00Z"), now()), "30m");
        assert_eq!(age(&at("2026-11-25T10:30:00Z"), now()), "5h30m");
        assert_eq!(age(&at("2026-11-24T06:00:00Z"), now()), "34h");
        assert_eq!(age(&at("2026-11-22T13:00:00Z"), now()), "3d3h");
        assert_eq!(age(&at("2026-10-01T16:00:00Z"), now()), "55d");
        assert_eq!(age(&at("2026-11-25T16:00:05Z"), now()), "0s");
    }

    #[test]
    fn the_summary_has_metrics_and_the_model() {
        let r = run(
            "bc",
            "2026-11-25T15:59:15Z",
            json!({
                "phase": "Succeeded",
                "startTime": "2026-11-25T15:59:16Z", "completionTime": "2026-11-25T15:59:18Z",
                "metrics": {"evaluatedOn": "validation", "accuracy": 0.967, "logLoss": 0.0912,
                            "validationRows": 91, "iterations": 23, "converged": true},
                "model": {"uri": "file:///m/model.json", "sha256": "ab12", "bytes": 2048}
            }),
        );
        assert_eq!(
            summary(&r),
            "\
trainingrun/bc Succeeded
  duration      2.0s
  accuracy      0.9670
  log loss      0.0912
  evaluated on  validation (91 rows)
  iterations    23 (converged)
  model         file:///m/model.json
  sha256        ab12
  bytes         2048
"
        );
    }

    #[test]
    fn a_custom_programs_own_metrics_are_shown_once() {
        let r = run(
            "byo",
            "2026-11-25T15:59:15Z",
            json!({
                "phase": "Succeeded",
                "metrics": {"accuracy": 0.9, "reported": {"accuracy": 0.9, "f1": 0.85, "auc": 0.95}},
                "model": {"uri": "s3://m/model.joblib", "sha256": "ab12", "bytes": 10}
            }),
        );
        let text = summary(&r);
        assert_eq!(text.matches("accuracy").count(), 1, "{text}");
        assert!(text.contains("  auc ") && text.contains("0.9500"), "{text}");
        assert!(text.contains("  f1 ") && text.contains("0.8500"), "{text}");
    }

    #[test]
    fn the_failure_reason_comes_from_the_status() {
        let r = run(
            "bad",
            "2026-11-25T15:59:15Z",
            json!({"phase": "Failed", "message": "BadInput: no rows"}),
        );
        assert_eq!(failure_reason(&r), "BadInput: no rows");
        let r = run(
            "bad",
            "2026-11-25T15:59:15Z",
            json!({"phase": "Failed", "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                   "message": "ran longer than 10s", "lastTransitionTime": "2026-11-25T15:59:15Z"}]}),
        );
        assert_eq!(failure_reason(&r), "DeadlineExceeded: ran longer than 10s");
        let r = run("c", "2026-11-25T15:59:15Z", json!({"phase": "Cancelled"}));
        assert_eq!(failure_reason(&r), "no reason given");
    }

    #[test]
    fn the_outcome_does_not_repeat_the_phase() {
        let r = run(
            "held",
            "2026-11-25T15:59:15Z",
            json!({"phase": "Cancelled", "message": "Cancelled: spec.cancel was set"}),
        );
        assert_eq!(
            outcome(&r),
            "trainingrun/held Cancelled: spec.cancel was set"
        );
        let r = run(
            "bad",
            "2026-11-25T15:59:15Z",
            json!({"phase": "Failed", "message": "BadInput: no rows"}),
        );
        assert_eq!(outcome(&r), "trainingrun/bad Failed: BadInput: no rows");
    }
}
