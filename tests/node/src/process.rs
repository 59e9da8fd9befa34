//! One container as a local process: spawned in its own process group with its log file and
//! pidfile, signalled as a group, reaped with its exit code.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// Everything needed to start one container process.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub pidfile: PathBuf,
}

/// A started container process.
#[derive(Debug)]
pub struct Running {
    child: Child,
    pid: Option<i32>,
    pidfile: PathBuf,
    pub started: DateTime<Utc>,
}

/// How a container process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit code, or 128 + the signal number when a signal ended it (as kubelet reports).
    pub code: i32,
    pub signal: Option<i32>,
}

/// Starts the process with exactly `launch.env` (nothing inherited), stdout and stderr appended
/// to the log file, in a new process group so that signals reach its children too.
pub fn spawn(launch: &Launch) -> Result<Running> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&launch.log)
        .with_context(|| format!("opening log {}", launch.log.display()))?;
    let err = log.try_clone().context("duplicating the log file")?;
    let child = Command::new(&launch.program)
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", launch.program.display()))?;
    let pid = child.id().and_then(|id| i32::try_from(id).ok());
    if let Some(pid) = pid {
        // down.sh stops whatever is recorded here if the node itself could not.
        let start = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| rest.to_owned()))
            .and_then(|rest| rest.split_whitespace().nth(19).map(str::to_owned))
            .unwrap_or_default();
        std::fs::write(&launch.pidfile, format!("{pid} {start}\n"))
            .with_context(|| format!("writing {}", launch.pidfile.display()))?;
    }
    Ok(Running {
        child,
        pid,
        pidfile: launch.pidfile.clone(),
        started: Utc::now(),
    })
}

impl Running {
    /// Signals the process group; a group that is already gone is not an error.
    pub fn signal(&self, signal: Signal) {
        signal_group(self.pid, signal);
    }

    /// The process id (and process group id), for signalling while `wait` runs.
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// Waits for the process to end and removes its pidfile.
    pub async fn wait(&mut self) -> Result<Exit> {
        let status = self.child.wait().await.context("waiting for the process")?;
        // The group may outlive its leader (e.g. `sh -c 'sleep 100 &'`); end the stragglers.
        self.signal(Signal::SIGKILL);
        if let Err(error) = std::fs::remove_file(&self.pidfile) {
            tracing::debug!(%error, "pidfile already gone");
        }
        let signal = status.signal();
        let code = status.code().unwrap_or_else(|| 128 + signal.unwrap_or(0));
        Ok(Exit { code, signal })
    }

    /// The id kubelet would call the container ID.
    pub fn container_id(&self) -> String {
        format!("process://{}", self.pid.unwrap_or(0))
    }
}

/// Signals one process; one that is already gone is not an error.
pub fn signal_process(pid: Option<i32>, signal: Signal) {
    if let Some(pid) = pid
        && let Err(error) = nix::sys::signal::kill(Pid::from_raw(pid), signal)
    {
        tracing::debug!(pid, ?signal, %error, "signal not delivered");
    }
}

/// Signals a process group; a group that is already gone is not an error.
pub fn signal_group(pid: Option<i32>, signal: Signal) {
    if let Some(pid) = pid
        && let Err(error) = killpg(Pid::from_raw(pid), signal)
    {
        tracing::debug!(pid, ?signal, %error, "signal not delivered");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn launch(dir: &std::path::Path, script: &str) -> Launch {
        Launch {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: vec![("GREETING".into(), "hello".into())],
            dir: dir.to_path_buf(),
            log: dir.join("c.log"),
            pidfile: dir.join("c.pid"),
        }
    }

    #[tokio::test]
    async fn runs_with_only_the_given_env_and_reports_exit_codes() {
        let dir = std::env::temp_dir().join(format!("testnode-process-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = spawn(&launch(&dir, "echo $GREETING ${HOME:-nohome}; exit 3")).unwrap();
        assert!(dir.join("c.pid").exists());
        let exit = p.wait().await.unwrap();
        assert_eq!(
            exit,
            Exit {
                code: 3,
                signal: None
            }
        );
        assert!(!dir.join("c.pid").exists());
        let log = std::fs::read_to_string(dir.join("c.log")).unwrap();
        assert_eq!(log, "hello nohome\n");

        let mut p = spawn(&launch(&dir, "exec sleep 30")).unwrap();
        p.signal(Signal::SIGTERM);
        let exit = p.wait().await.unwrap();
        assert_eq!(exit.code, 143);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
