//! The program itself: started with the contract's environment, its stdout read as JSON-lines
//! events (anything else passes through as a log line), its stderr passed through with the
//! tail kept for the error message, and SIGTERM / SIGINT forwarded to it.
//!
//! The program stays in the wrapper's process group, so whoever kills the group (the kubelet
//! after the grace period, `kubetrain local`) kills it too. A container runtime signals only
//! the wrapper, which is why it forwards.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{ExitStatus, Stdio};
use std::time::Instant;

use kubetrain_api::invocation::ENV_MODEL_DIR;
use kubetrain_api::report::{ProgramEvent, ProgramLine};
use kubetrain_api::{ErrorClass, Iteration, TrainerError};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};

use crate::ExecConfig;
use crate::inputs::LocalInputs;

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

/// Run the program to its end.
///
/// # Errors
/// The program cannot be started (not found, not executable: bad input).
pub async fn run(
    config: &ExecConfig,
    inputs: &LocalInputs,
    progress: &(dyn Fn(&Iteration) + Sync),
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
    let mut lines = child.stdout.take().map(|out| BufReader::new(out).lines());
    let started = Instant::now();
    let mut ended = Ended {
        status: ExitStatus::default(),
        progress: None,
        metrics: BTreeMap::new(),
        stderr_tail: String::new(),
        stopped_by: None,
        command: config.command.clone(),
    };
    let (mut term, mut int) = signals()?;
    let status = loop {
        tokio::select! {
            line = next_line(&mut lines) => match line {
                Some(line) => relay(&line, config.echo_events, started, progress, &mut ended),
                None => lines = None,
            },
            _ = term.recv() => forward(pid, nix::sys::signal::Signal::SIGTERM, &mut ended),
            _ = int.recv() => forward(pid, nix::sys::signal::Signal::SIGINT, &mut ended),
            status = child.wait(), if lines.is_none() => break status,
        }
    };
    ended.status = status.map_err(|e| {
        TrainerError::new(
            ErrorClass::Internal,
            format!("waiting for the program: {e}"),
        )
    })?;
    if let Some(stderr) = stderr {
        ended.stderr_tail = stderr.await.unwrap_or_default();
    }
    Ok(ended)
}

fn signals() -> Result<(tokio::signal::unix::Signal, tokio::signal::unix::Signal), TrainerError> {
    let install = |kind| {
        signal(kind).map_err(|e| {
            TrainerError::new(
                ErrorClass::Internal,
                format!("installing a signal handler: {e}"),
            )
        })
    };
    Ok((
        install(SignalKind::terminate())?,
        install(SignalKind::interrupt())?,
    ))
}

fn forward(pid: Option<nix::unistd::Pid>, signal: nix::sys::signal::Signal, ended: &mut Ended) {
    if let Some(pid) = pid {
        let _ = nix::sys::signal::kill(pid, signal);
    }
    ended.stopped_by = Some(signal as i32);
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

async fn next_line<R: AsyncRead + Unpin>(
    lines: &mut Option<tokio::io::Lines<BufReader<R>>>,
) -> Option<String> {
    match lines {
        Some(lines) => lines.next_line().await.ok().flatten(),
        None => std::future::pending().await,
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
