//! One run's attempts, holding one worker slot: start the trainer, follow its progress, and
//! record how the attempt ended ([`crate::retry`] decides what follows).

use std::process::ExitStatus;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kubetrain_api::{Phase, TrainerEvent, TrainerResults, TrainingRun, lifecycle};
use kubetrain_gateway::BackendError;
use tokio::process::Child;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::pool::{Inner, Key, Stop, run_name};
use crate::process;
use crate::queue::runnable;
use crate::retry::{self, Exit, Outcome};
use crate::status;

/// What to do after an attempt.
enum Next {
    Done,
    Retry(std::time::Duration),
}

/// How following a trainer ended.
enum Ended {
    Exited {
        status: ExitStatus,
        results: Option<Box<TrainerResults>>,
        stderr: String,
    },
    Stopped(Stop),
}

/// The pool itself could not run an attempt (not a training failure).
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("cannot start the trainer {trainer}: {source}")]
    Spawn {
        trainer: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The stop signal, once one is sent.
async fn stopped(stop: &mut watch::Receiver<Option<Stop>>) -> Stop {
    loop {
        if let Some(why) = *stop.borrow_and_update() {
            return why;
        }
        if stop.changed().await.is_err() {
            // The sender lives as long as the attempt; without it nothing can stop us.
            std::future::pending::<()>().await;
        }
    }
}

impl Inner {
    /// Every attempt of one run, holding one worker slot.
    pub(crate) async fn train(
        self: &Arc<Self>,
        key: &Key,
        mut stop: watch::Receiver<Option<Stop>>,
        _slot: OwnedSemaphorePermit,
    ) {
        let mut failures = 0;
        loop {
            match self.attempt(key, &mut stop, &mut failures).await {
                Ok(Next::Done) => return,
                Ok(Next::Retry(delay)) => {
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        why = stopped(&mut stop) => { self.stopped(key, why).await; return; }
                    }
                }
                Err(error) => {
                    warn!(%error, run = %format!("{}/{}", key.0, key.1), "training attempt failed to run");
                    let message = error.to_string();
                    let _ = self
                        .transition(key.clone(), move |run| {
                            status::fail(run, "Internal", &message, Timestamp::now());
                            true
                        })
                        .await;
                    return;
                }
            }
        }
    }

    /// One attempt: start the trainer, follow it, record how it ended.
    async fn attempt(
        self: &Arc<Self>,
        key: &Key,
        stop: &mut watch::Receiver<Option<Stop>>,
        failures: &mut i32,
    ) -> Result<Next, AttemptError> {
        let Some(run) = self.get(key).await? else {
            return Ok(Next::Done);
        };
        if !runnable(&run) {
            return Ok(Next::Done);
        }
        let why = *stop.borrow();
        if let Some(why) = why {
            self.stopped(key, why).await;
            return Ok(Next::Done);
        }
        let process::Started {
            mut child,
            work_dir,
        } = process::spawn(&self.config, self.threads, &run).map_err(|source| {
            AttemptError::Spawn {
                trainer: self.config.trainer.display().to_string(),
                source,
            }
        })?;
        let next = self.attempt_with(key, stop, failures, &mut child).await;
        process::remove_work_dir(work_dir.as_deref());
        next
    }

    /// The rest of [`Inner::attempt`] once the trainer is started.
    async fn attempt_with(
        self: &Arc<Self>,
        key: &Key,
        stop: &mut watch::Receiver<Option<Stop>>,
        failures: &mut i32,
        child: &mut Child,
    ) -> Result<Next, AttemptError> {
        let pid = child.id();
        let now = Timestamp::now();
        let started = self
            .transition(key.clone(), move |run| {
                if !runnable(run) {
                    return false;
                }
                let attempt = run.status.as_ref().and_then(|s| s.attempts).unwrap_or(0) + 1;
                status::started(run, attempt, pid, now);
                true
            })
            .await?;
        let Some(run) = started.filter(|r| status::phase(r) == Some(Phase::Running)) else {
            process::stop(child, self.config.stop_grace).await;
            let why = *stop.borrow();
            if let Some(why) = why {
                self.stopped(key, why).await;
            }
            return Ok(Next::Done);
        };
        debug!(run = %run_name(&run), ?pid, "trainer started");
        self.arm_active_deadline(&run);
        match self.follow(key, child, stop).await {
            Ended::Stopped(why) => {
                process::stop(child, self.config.grace_for(why)).await;
                self.stopped(key, why).await;
                Ok(Next::Done)
            }
            Ended::Exited {
                status: exit,
                results,
                stderr,
            } => {
                let code = exit.code().or_else(|| {
                    std::os::unix::process::ExitStatusExt::signal(&exit).map(|s| 128 + s)
                });
                let exit = Exit {
                    code,
                    success: exit.success(),
                    results,
                    stderr: &stderr,
                };
                let outcome = retry::after_exit(
                    exit,
                    *failures,
                    run.spec.backoff_limit,
                    self.config.retry_backoff,
                );
                if !matches!(outcome, Outcome::Succeeded(_)) {
                    *failures += 1;
                }
                self.record(key, &run, outcome, *failures).await
            }
        }
    }

    /// Read the trainer's progress until it exits or is stopped.
    async fn follow(
        self: &Arc<Self>,
        key: &Key,
        child: &mut Child,
        stop: &mut watch::Receiver<Option<Stop>>,
    ) -> Ended {
        let stderr = process::stderr_tail(child);
        let mut lines = process::stdout_lines(child);
        let mut results = None;
        let mut pending: Option<kubetrain_api::Progress> = None;
        let mut next_write = Instant::now();
        loop {
            tokio::select! {
                line = process::next_line(&mut lines), if lines.is_some() => match line {
                    Some(line) => match TrainerEvent::parse(&line) {
                        Some(TrainerEvent::Progress(iteration)) => {
                            pending = Some(iteration.status_progress(Timestamp::now()));
                        }
                        Some(TrainerEvent::Completed { results: done, .. }) => results = Some(done),
                        None => debug!(line, "trainer output that is not a progress event"),
                    },
                    None => lines = None,
                },
                exit = child.wait(), if lines.is_none() => {
                    let stderr = match stderr {
                        Some(task) => task.await.unwrap_or_default(),
                        None => String::new(),
                    };
                    return match exit {
                        Ok(status) => Ended::Exited { status, results, stderr },
                        Err(error) => Ended::Exited {
                            status: ExitStatus::default(),
                            results: None,
                            stderr: format!("error: cannot wait for the trainer: {error}"),
                        },
                    };
                }
                why = stopped(stop) => return Ended::Stopped(why),
                () = tokio::time::sleep_until(next_write), if pending.is_some() => {
                    if let Some(progress) = pending.take() {
                        self.write_progress(key, progress).await;
                    }
                    next_write = Instant::now() + self.config.progress_interval;
                }
            }
        }
    }

    async fn write_progress(self: &Arc<Self>, key: &Key, progress: kubetrain_api::Progress) {
        let result = self
            .transition(key.clone(), move |run| {
                if status::phase(run) != Some(Phase::Running) {
                    return false;
                }
                if let Some(s) = run.status.as_mut() {
                    s.progress = Some(progress);
                }
                true
            })
            .await;
        if let Err(error) = result {
            warn!(%error, "could not record progress");
        }
    }

    /// Record an attempt's `outcome` (the run's `failures`-th failure, if it failed).
    async fn record(
        self: &Arc<Self>,
        key: &Key,
        run: &TrainingRun,
        outcome: Outcome,
        failures: i32,
    ) -> Result<Next, AttemptError> {
        let now = Timestamp::now();
        match outcome {
            Outcome::Succeeded(results) => {
                self.transition(key.clone(), move |run| {
                    status::succeed(run, *results, now);
                    true
                })
                .await?;
                Ok(Next::Done)
            }
            Outcome::Retry { delay, error } => {
                info!(run = %run_name(run), failures, ?delay, message = %error.message, "attempt failed; retrying");
                self.transition(key.clone(), move |run| {
                    status::retrying(run, error, now);
                    true
                })
                .await?;
                Ok(Next::Retry(delay))
            }
            Outcome::Fail {
                reason,
                message,
                error,
            } => {
                self.transition(key.clone(), move |run| {
                    if let Some(s) = run.status.as_mut() {
                        s.trainer_error = Some(error);
                    }
                    status::fail(run, &reason, &message, now);
                    true
                })
                .await?;
                Ok(Next::Done)
            }
        }
    }

    /// Record why a stopped attempt stopped (its process is gone).
    pub(crate) async fn stopped(self: &Arc<Self>, key: &Key, why: Stop) {
        let now = Timestamp::now();
        let result = match why {
            Stop::Delete => return,
            Stop::Cancel => {
                self.transition(key.clone(), move |run| {
                    status::cancel(run, now);
                    true
                })
                .await
            }
            Stop::Suspend => {
                self.transition(key.clone(), move |run| {
                    if !run.spec.suspend {
                        return false;
                    }
                    status::suspend(run, now);
                    true
                })
                .await
            }
            Stop::Deadline => {
                self.transition(key.clone(), move |run| {
                    let seconds = run.spec.active_deadline_seconds.unwrap_or_default();
                    status::fail(
                        run,
                        lifecycle::DEADLINE_EXCEEDED,
                        &format!(
                            "the run was active longer than activeDeadlineSeconds ({seconds}s)"
                        ),
                        now,
                    );
                    true
                })
                .await
            }
            Stop::Shutdown => {
                self.transition(key.clone(), move |run| {
                    let attempts = run.status.as_ref().and_then(|s| s.attempts).unwrap_or(0);
                    status::fail(
                        run,
                        lifecycle::INTERRUPTED,
                        &lifecycle::interrupted(attempts),
                        now,
                    );
                    true
                })
                .await
            }
        };
        if let Err(error) = result {
            warn!(%error, ?why, "could not record a stopped run");
        }
    }
}
