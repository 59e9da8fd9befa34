//! The program itself: started with the contract's environment, its stdout read as JSON-lines
//! events (anything else passes through as a log line), its stderr passed through with the
//! tail kept for the error message, and SIGTERM / SIGINT forwarded to it. The attempt ends
//! when the program exits; its pipes are read for a few seconds more, not until every
//! process that inherited them is gone.
//!
//! The program stays in the wrapper's process group, so whoever kills the group (the kubelet
//! after the grace period, `kubetrain local`) kills it too. A container runtime signals only
//! the wrapper, which is why it forwards.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kubetrain_api::invocation::ENV_MODEL_DIR;
use kubetrain_api::report::{ProgramEvent, ProgramLine};
use kubetrain_api::{ErrorClass, Iteration, TrainerError};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::ExecConfig;
use crate::inputs::LocalInputs;
use crate::signals::StopSignals;

/// Most of the program's stderr kept for the error message, in bytes.
const STDERR_TAIL: usize = 16 * 1024;

/// How the program ended and what it reported.
#[derive(Debug, Clone)]
pub struct Ended {
    /// Its exit status.
    pub status: ExitStatus,
    /// The last progress it reported.
    pub progress: Option<Iteration>,
    /// Its metrics (later reports of a name win).
    pub metrics: BTreeMap<String, f64>,
    /// The end of its stderr.
    pub stderr_tail: String,
    /// The signal the wrapper forwarded to it, if it was asked to stop.
    pub stopped_by: Option<i32>,
    /// The command that ran.
    pub command: Vec<String>,
}

/// How long the program's pipes are read after it exited: a background process it left
/// holding them (a daemon, `tool &` in a shell script) must not keep the attempt open.
const DRAIN: Duration = Duration::from_secs(5);

/// Run the program to its end, forwarding the stop signals `signals` receives.
///
/// # Errors
/// The program cannot be started (not found, not executable: bad input).
pub async fn run(
    config: &ExecConfig,
    inputs: &LocalInputs,
    progress: &(dyn Fn(&Iteration) + Sync),
    signals: &mut StopSignals,
) -> Result<Ended, TrainerError> {
    let Some((program, args)) = config.command.split_first() else {
        return Err(TrainerError::new(
            ErrorClass::BadInput,
            "no program to run: give it after `--`",
        ));
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .env(ENV_MODEL_DIR, &config.model_dir)
        .envs(inputs.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| {
        TrainerError::new(
            ErrorClass::BadInput,
            format!("cannot start the program {program:?}: {e} (is it on PATH in the image?)"),
        )
    })?;
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(nix::unistd::Pid::from_raw);
    let stderr = child
        .stderr
        .take()
        .map(|pipe| tokio::spawn(pass_stderr(pipe)));
    let mut lines = child.stdout.take().map(BufReader::new);
    let started = Instant::now();
    let mut ended = Ended {
        status: ExitStatus::default(),
        progress: None,
        metrics: BTreeMap::new(),
        stderr_tail: String::new(),
        stopped_by: None,
        command: config.command.clone(),
    };
    let status = loop {
        tokio::select! {
            line = next_line(&mut lines) => match line {
                Some(line) => relay(&line, config.echo_events, started, progress, &mut ended),
                None => lines = None,
            },
            signal = signals.recv() => {
                if let Some(pid) = pid
                    && let Ok(signal) = nix::sys::signal::Signal::try_from(signal)
                {
                    let _ = nix::sys::signal::kill(pid, signal);
                }
                ended.stopped_by = Some(signal);
            }
            status = child.wait() => break status,
        }
    };
    // What it printed just before it ended still counts; both pipes share one deadline.
    let drained = tokio::time::Instant::now() + DRAIN;
    if lines.is_some() {
        let _ = tokio::time::timeout_at(drained, async {
            while let Some(line) = next_line(&mut lines).await {
                relay(&line, config.echo_events, started, progress, &mut ended);
            }
        })
        .await;
    }
    ended.status = status.map_err(|e| {
        TrainerError::new(
            ErrorClass::Internal,
            format!("waiting for the program: {e}"),
        )
    })?;
    if let Some(stderr) = stderr
        && let Ok(Ok(tail)) = tokio::time::timeout_at(drained, stderr).await
    {
        ended.stderr_tail = tail;
    }
    Ok(ended)
}

/// One stdout line: an event is recorded (and echoed when asked), anything else is logged.
fn relay(
    line: &str,
    echo_events: bool,
    started: Instant,
    progress: &(dyn Fn(&Iteration) + Sync),
    ended: &mut Ended,
) {
    match ProgramLine::parse(line) {
        ProgramLine::Event(event) => {
            if echo_events {
                print_line(line);
            }
            match event {
                ProgramEvent::Progress(report) => {
                    let iteration = report.iteration(started.elapsed());
                    progress(&iteration);
                    ended.progress = Some(iteration);
                }
                ProgramEvent::Metrics { metrics } => ended.metrics.extend(metrics),
            }
        }
        ProgramLine::Malformed(why) => {
            eprintln!("kubetrain exec: not a valid event line ({why}), kept as a log line");
            print_line(line);
        }
        ProgramLine::Log => print_line(line),
    }
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The next line of `reader` (bytes that are not UTF-8 replaced, so no output of the program
/// ends the relay); `None` at its end, and forever once it is gone (for `select!`).
async fn next_line<R: AsyncRead + Unpin>(reader: &mut Option<BufReader<R>>) -> Option<String> {
    let Some(pipe) = reader else {
        return std::future::pending().await;
    };
    let mut line = Vec::new();
    match pipe.read_until(b'\n', &mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            Some(String::from_utf8_lossy(&line).into_owned())
        }
    }
}

/// Copy the program's stderr to ours as it comes and return its last [`STDERR_TAIL`] bytes.
async fn pass_stderr(mut pipe: impl AsyncRead + Unpin) -> String {
    let mut tail = Vec::new();
    let mut buffer = vec![0u8; 8192];
    while let Ok(n) = pipe.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&buffer[..n]);
        let _ = err.flush();
        tail.extend_from_slice(&buffer[..n]);
        if tail.len() > 2 * STDERR_TAIL {
            tail.drain(..tail.len() - STDERR_TAIL);
        }
    }
    String::from_utf8_lossy(&tail).into_owned()
}
