//! Progress reporting: the one interface through which training talks to the outside world
//! while it runs (Kubernetes status, JSON lines for the local process pool, a terminal).

use std::io::Write;
use std::sync::Mutex;

/// One progress report, sent after each solver iteration: the event type of the trainer's
/// JSON-lines protocol, so writer and readers share it.
pub use kubetrain_api::Iteration;
use kubetrain_api::TrainerEvent;

/// Receives progress reports. Called from the thread that called `train`, never concurrently.
pub trait ProgressSink {
    /// Called once per solver iteration; must return quickly (it runs between iterations).
    fn report(&self, progress: &Iteration);
}

/// Discards all reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn report(&self, _progress: &Iteration) {}
}

/// One JSON object per line, e.g.
/// `{"event":"progress","iteration":3,"total":100,"loss":0.31,"elapsedSeconds":0.02}`.
#[derive(Debug)]
pub struct JsonLines<W: Write> {
    out: Mutex<W>,
}

impl<W: Write> JsonLines<W> {
    /// Write reports to `out` (stdout for the local process pool).
    pub fn new(out: W) -> Self {
        JsonLines {
            out: Mutex::new(out),
        }
    }
}

impl<W: Write> ProgressSink for JsonLines<W> {
    fn report(&self, progress: &Iteration) {
        let line = TrainerEvent::Progress(progress.clone()).to_line();
        if let Ok(mut out) = self.out.lock() {
            // A closed pipe must not abort training: the reader only loses progress.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    }
}

/// Human-readable lines, e.g. `iteration 3/100  loss 0.310412  0.02s`, with
/// `validation loss 0.334512` before the time when the fit watches validation rows.
#[derive(Debug)]
pub struct Text<W: Write> {
    out: Mutex<W>,
}

impl<W: Write> Text<W> {
    /// Write reports to `out` (stderr on a terminal).
    pub fn new(out: W) -> Self {
        Text {
            out: Mutex::new(out),
        }
    }
}

impl<W: Write> ProgressSink for Text<W> {
    fn report(&self, p: &Iteration) {
        if let Ok(mut out) = self.out.lock() {
            let validation = p
                .validation_loss
                .map(|l| format!("  validation loss {l:.6}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "iteration {}/{}  loss {:.6}{validation}  {:.2}s",
                p.iteration,
                p.total,
                p.loss,
                p.elapsed.as_secs_f64()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn json_lines_are_one_object_per_report() {
        let sink = JsonLines::new(Vec::new());
        for iteration in 1..=2 {
            sink.report(&Iteration {
                iteration,
                total: 10,
                loss: 0.5,
                validation_loss: None,
                elapsed: Duration::from_millis(1500),
            });
        }
        let text = String::from_utf8(sink.out.into_inner().unwrap()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["event"], "progress");
        assert_eq!(lines[1]["iteration"], 2);
        assert_eq!(lines[1]["total"], 10);
        assert_eq!(lines[1]["elapsedSeconds"], 1.5);
    }
}
