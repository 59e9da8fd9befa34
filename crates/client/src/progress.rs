//! What a run's status says about its progress, shown as an indicatif bar on a terminal or as
//! plain lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kubetrain_api::TrainingRun;

/// The progress of a run at one moment, from its status.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressView {
    /// `Pending`, `Running`, ... (`Pending` before the run has a status).
    pub phase: String,
    /// Solver iterations done, and the upper bound (0 when not known yet).
    pub iteration: u64,
    /// The iteration budget (`maxIterations`).
    pub total: u64,
    /// `status.progress.percent`.
    pub percent: f64,
    /// The training loss at the last report.
    pub loss: Option<f64>,
    /// Seconds left at the current speed.
    pub eta_seconds: Option<f64>,
    /// Why the run is where it is (e.g. waiting for a worker), when the status says.
    pub message: Option<String>,
}

impl ProgressView {
    /// Read the progress out of a run.
    pub fn from_run(run: &TrainingRun) -> Self {
        let status = run.status.as_ref();
        let phase = status
            .and_then(|status| status.phase)
            .map_or("Pending", |phase| phase.as_str())
            .to_owned();
        let progress = status.and_then(|status| status.progress.as_ref());
        let total = progress.map_or(0, |p| p.total);
        Self {
            phase,
            iteration: progress.map_or(0, |p| p.iteration),
            total,
            percent: progress.map_or(0.0, |p| p.percent.clamp(0.0, 100.0)),
            loss: progress.and_then(|p| p.loss),
            eta_seconds: progress.and_then(|p| p.estimated_remaining_seconds),
            message: status
                .and_then(|status| status.message.clone())
                .filter(|message| !message.is_empty()),
        }
    }

    /// The bar's message: phase, loss and the trainer's estimate of the time left.
    pub fn bar_message(&self) -> String {
        let mut text = self.phase.clone();
        self.push_details(&mut text);
        text
    }

    /// One plain line for logs: `Running  40/200 iterations (20%)  loss 0.2500  ETA 3s`.
    pub fn plain_line(&self) -> String {
        let mut text = self.phase.clone();
        if self.total > 0 {
            text.push_str(&format!(
                "  {}/{} iterations ({:.0}%)",
                self.iteration, self.total, self.percent
            ));
        }
        self.push_details(&mut text);
        text
    }

    /// Loss, the time left while Running, and the status message until there is progress
    /// (then "Running: training" adds nothing).
    fn push_details(&self, text: &mut String) {
        if let Some(loss) = self.loss {
            text.push_str(&format!("  loss {loss:.4}"));
        }
        if let Some(eta) = self.eta_seconds.filter(|_| self.phase == "Running") {
            text.push_str(&format!("  ETA {}", format_seconds(eta)));
        }
        if self.total == 0
            && let Some(message) = &self.message
        {
            text.push_str(&format!("  {message}"));
        }
    }
}

/// `42s`, `3m05s`, `1h02m`.
pub fn format_seconds(seconds: f64) -> String {
    let seconds = seconds.max(0.0).round() as u64;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// Shows a run's progress: a bar when stderr is a terminal, else one line per change.
#[derive(Debug)]
pub struct Reporter {
    bar: ProgressBar,
    plain: bool,
    last_line: Option<String>,
}

impl Reporter {
    /// A bar on stderr when it is a terminal; plain lines on stderr otherwise.
    pub fn new(name: &str) -> Self {
        if std::io::stderr().is_terminal() {
            Self::bar(name, ProgressDrawTarget::stderr())
        } else {
            Self::plain()
        }
    }

    /// Plain progress lines, for logs and pipes.
    pub fn plain() -> Self {
        Self {
            bar: ProgressBar::hidden(),
            plain: true,
            last_line: None,
        }
    }

    fn bar(name: &str, target: ProgressDrawTarget) -> Self {
        let style = ProgressStyle::with_template(
            "{spinner} {prefix} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} ({percent}%) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(0), target)
            .with_style(style)
            .with_prefix(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Self {
            bar,
            plain: false,
            last_line: None,
        }
    }

    /// Show the run's new state.
    pub fn update(&mut self, run: &TrainingRun) {
        let view = ProgressView::from_run(run);
        if self.plain {
            let line = view.plain_line();
            if self.last_line.as_ref() != Some(&line) {
                let _ = writeln!(std::io::stderr(), "{line}");
                self.last_line = Some(line);
            }
            return;
        }
        if view.total > 0 {
            self.bar.set_length(view.total);
            self.bar.set_position(view.iteration.min(view.total));
        }
        self.bar.set_message(view.bar_message());
    }

    /// Remove the bar (the summary follows on stdout).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn run(status: serde_json::Value) -> TrainingRun {
        TrainingRun::test("r").with_status(&status.to_string())
    }

    #[test]
    fn a_run_without_status_is_pending() {
        let mut r = run(serde_json::json!({}));
        r.status = None;
        let view = ProgressView::from_run(&r);
        assert_eq!(view.phase, "Pending");
        assert_eq!(view.total, 0);
        assert_eq!(view.plain_line(), "Pending");
    }

    #[test]
    fn running_progress_shows_iterations_loss_and_eta() {
        let view = ProgressView::from_run(&run(serde_json::json!({
            "phase": "Running",
            "progress": {"iteration": 40, "total": 200, "percent": 20.0, "loss": 0.25, "estimatedRemainingSeconds": 125.4}
        })));
        assert_eq!((view.iteration, view.total), (40, 200));
        assert_eq!(
            view.plain_line(),
            "Running  40/200 iterations (20%)  loss 0.2500  ETA 2m05s"
        );
        assert_eq!(view.bar_message(), "Running  loss 0.2500  ETA 2m05s");
    }

    #[test]
    fn a_waiting_run_says_why() {
        let view = ProgressView::from_run(&run(serde_json::json!({
            "phase": "Queued", "message": "waiting for a free worker (2 of 2 busy)"
        })));
        assert_eq!(
            view.plain_line(),
            "Queued  waiting for a free worker (2 of 2 busy)"
        );
        assert_eq!(
            view.bar_message(),
            "Queued  waiting for a free worker (2 of 2 busy)"
        );
    }

    #[test]
    fn a_finished_run_shows_no_eta() {
        let view = ProgressView::from_run(&run(serde_json::json!({
            "phase": "Succeeded",
            "progress": {"iteration": 23, "total": 200, "percent": 100.0, "loss": 0.08, "estimatedRemainingSeconds": 0.0}
        })));
        assert_eq!(
            view.plain_line(),
            "Succeeded  23/200 iterations (100%)  loss 0.0800"
        );
    }

    #[test]
    fn seconds_read_like_a_clock() {
        assert_eq!(format_seconds(0.2), "0s");
        assert_eq!(format_seconds(59.0), "59s");
        assert_eq!(format_seconds(61.0), "1m01s");
        assert_eq!(format_seconds(3720.0), "1h02m");
        assert_eq!(format_seconds(-3.0), "0s");
    }
}
