//! Trainer processes: started as `kubetrain train` with exactly the arguments and environment
//! the Kubernetes Job gives its container, in a process group of their own so that killing
//! one kills everything it started.

use std::process::Stdio;

use kubetrain_api::TrainingRun;
use kubetrain_api::invocation::{
    ENV_DATASET_CACHE, ENV_PREFIX, EnvValue, StatusReport, trainer_args, trainer_env,
    trainer_threads,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::Config;

/// Most trainer stderr kept for the error message.
const STDERR_TAIL: usize = 16 * 1024;

/// Start the trainer of `run`: its own thread count (from its CPU resources), else `threads`.
///
/// # Errors
/// The trainer binary cannot be started.
pub(crate) fn spawn(config: &Config, threads: u32, run: &TrainingRun) -> std::io::Result<Child> {
    let threads = trainer_threads(run.spec.resources.as_ref()).unwrap_or(threads);
    let mut command = Command::new(&config.trainer);
    command.args(trainer_args(&run.spec, Some(threads)));
    // Only the shared environment decides how the trainer runs: flags it would read from
    // inherited KUBETRAIN_* variables (and a run identity that would make it report into
    // a cluster) are removed.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with(ENV_PREFIX) {
            command.env_remove(name);
        }
    }
    for var in trainer_env(run, &config.storage, StatusReport::Stdout) {
        match var.value {
            EnvValue::Value(value) => {
                command.env(&var.name, value);
            }
            // No Secrets on one machine: the trainer uses the credentials in
            // `kubetrain local`'s own environment (AWS_ACCESS_KEY_ID, ...).
            EnvValue::SecretKey { .. } => {}
        }
    }
    if let Some(dir) = &config.dataset_cache {
        command.env(ENV_DATASET_CACHE, dir);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    command.spawn()
}

/// The trainer's stdout, line by line (its progress events).
pub(crate) fn stdout_lines(child: &mut Child) -> Option<Lines<BufReader<ChildStdout>>> {
    child.stdout.take().map(|out| BufReader::new(out).lines())
}

/// The next line of `lines`; never, once they are gone (so a `select!` waits on the rest).
pub(crate) async fn next_line(lines: &mut Option<Lines<BufReader<ChildStdout>>>) -> Option<String> {
    match lines {
        Some(lines) => lines.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

/// Collect the last [`STDERR_TAIL`] bytes of the trainer's stderr until it closes.
pub(crate) fn stderr_tail(child: &mut Child) -> Option<JoinHandle<String>> {
    child.stderr.take().map(|mut pipe| {
        tokio::spawn(async move {
            let mut tail = Vec::new();
            let mut buffer = vec![0u8; 8192];
            while let Ok(n) = pipe.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buffer[..n]);
                if tail.len() > 2 * STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
            String::from_utf8_lossy(&tail).into_owned()
        })
    })
}

/// Kill the trainer's whole process group and reap it.
pub(crate) async fn kill(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill().await;
}
