//! How the program's end reads under the contract: exit 0 succeeds, 65 is bad input (no
//! retry), 75 transient, anything else (a signal included) internal, which counts against
//! `backoffLimit`. The message is the program's last stderr line, which is where programs
//! say what went wrong.

use std::os::unix::process::ExitStatusExt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kubetrain_api::exit_code::{BAD_INPUT, TRANSIENT};
use kubetrain_api::{ErrorClass, Metrics, ModelRef, Progress, TrainerError, TrainerResults};

use crate::program::Ended;

/// Whether the program succeeded.
///
/// # Errors
/// Its failure, classified by its exit code, with its last stderr line.
pub fn check(ended: &Ended) -> Result<(), TrainerError> {
    let code = ended.status.code();
    match (code, ended.stopped_by) {
        (Some(0), None) => return Ok(()),
        // A program that saves what it has and exits 0 when asked to stop has no finished
        // model: nothing is stored, and the run decides what follows (cancel, or a retry).
        (Some(0), Some(signal)) => {
            return Err(TrainerError::new(
                ErrorClass::Transient,
                format!(
                    "the program exited 0 after it was asked to stop (signal {signal}); its \
                     model may be partial and is not stored"
                ),
            ));
        }
        _ => {}
    }
    let class = match code {
        Some(BAD_INPUT) => ErrorClass::BadInput,
        Some(TRANSIENT) => ErrorClass::Transient,
        _ => ErrorClass::Internal,
    };
    let how = match (code, ended.status.signal()) {
        (Some(code), _) => format!("the program exited with code {code}"),
        (None, Some(signal)) => format!("the program was killed by signal {signal}"),
        (None, None) => "the program ended without an exit code".to_owned(),
    };
    let how = match ended.stopped_by {
        Some(signal) => format!("{how} after it was asked to stop (signal {signal})"),
        None => how,
    };
    let message = match last_line(&ended.stderr_tail) {
        Some(line) => format!("{line} ({how})"),
        None => how,
    };
    Err(TrainerError::new(class, message))
}

/// The last line with something on it.
fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rev().find(|l| !l.is_empty())
}

/// The status fields of a successful attempt: its last progress marked done, its metrics,
/// the main model file. Custom programs read the data themselves, so there is no dataset
/// summary.
pub fn results(ended: &Ended, model: ModelRef) -> TrainerResults {
    let now = Timestamp::now();
    let progress = match &ended.progress {
        Some(last) => Progress {
            percent: 100.0,
            estimated_remaining_seconds: Some(0.0),
            ..last.status_progress(now)
        },
        None => Progress {
            iteration: 0,
            total: 0,
            percent: 100.0,
            loss: None,
            validation_loss: None,
            estimated_remaining_seconds: Some(0.0),
            updated: Some(Time(now)),
        },
    };
    TrainerResults {
        progress,
        metrics: Metrics::from_program(&ended.metrics),
        model,
        dataset: None,
        top_features: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;
    use std::process::ExitStatus;

    use super::*;

    fn ended(raw_wait_status: i32, stderr: &str) -> Ended {
        Ended {
            status: ExitStatus::from_raw(raw_wait_status),
            progress: None,
            metrics: BTreeMap::new(),
            stderr_tail: stderr.to_owned(),
            stopped_by: None,
            command: vec!["python".into()],
        }
    }

    /// A wait status for exit code `code`.
    fn exited(code: i32) -> i32 {
        code << 8
    }

    #[test]
    fn exit_codes_map_to_the_contract_classes_with_the_last_stderr_line() {
        assert_eq!(check(&ended(exited(0), "")), Ok(()));
        let bad = check(&ended(exited(65), "loading\ncolumn 'age' is missing\n\n")).unwrap_err();
        assert_eq!((bad.reason.as_str(), bad.exit_code), ("BadInput", 65));
        assert_eq!(
            bad.message,
            "column 'age' is missing (the program exited with code 65)"
        );
        let transient = check(&ended(exited(75), "")).unwrap_err();
        assert_eq!(
            (transient.reason.as_str(), transient.exit_code),
            ("Transient", 75)
        );
        assert_eq!(transient.message, "the program exited with code 75");
        // Anything else counts against backoffLimit, usage errors included: the wrapper exits
        // 1, not the program's 2, which the Job's podFailurePolicy would take as bad input.
        for code in [1, 2, 3, 64, 66, 74, 76, 127, 255] {
            let other = check(&ended(exited(code), "")).unwrap_err();
            assert_eq!(
                (other.reason.as_str(), other.exit_code),
                ("Internal", 1),
                "{code}"
            );
        }
        let killed = check(&ended(9, "")).unwrap_err();
        assert_eq!(killed.exit_code, 1);
        assert_eq!(killed.message, "the program was killed by signal 9");
        let mut stopped = ended(15, "");
        stopped.stopped_by = Some(15);
        assert!(
            check(&stopped)
                .unwrap_err()
                .message
                .ends_with("asked to stop (signal 15)"),
        );
    }

    #[test]
    fn results_finish_the_progress_and_carry_the_metrics() {
        let mut done = ended(0, "");
        done.progress = Some(kubetrain_api::Iteration {
            iteration: 40,
            total: 50,
            loss: 0.2,
            validation_loss: Some(0.25),
            elapsed: std::time::Duration::from_secs(4),
        });
        done.metrics.insert("accuracy".into(), 0.9);
        let model = ModelRef {
            uri: "s3://m/model.joblib".into(),
            sha256: "ab".into(),
            bytes: 2,
        };
        let done = results(&done, model.clone());
        assert_eq!(done.progress.iteration, 40);
        assert_eq!(done.progress.percent, 100.0);
        assert_eq!(done.progress.validation_loss, Some(0.25));
        assert_eq!(done.metrics.score, Some(0.9));
        assert_eq!(done.model, model);
        assert_eq!(done.dataset, None);
        assert_eq!(results(&ended(0, ""), model).progress.percent, 100.0);
    }
}
