//! SIGTERM and SIGINT, listened to for the whole attempt: before the program starts (a
//! download can take minutes), while it runs (forwarded to it) and while its model uploads.
//! In a container the wrapper is the first process, which the kernel gives no default signal
//! actions: a signal nobody listens to would be lost.

use kubetrain_api::{ErrorClass, TrainerError};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The stop signals of this process.
#[derive(Debug)]
pub struct StopSignals {
    term: Signal,
    int: Signal,
}

impl StopSignals {
    /// Start listening.
    ///
    /// # Errors
    /// The handlers cannot be installed.
    pub fn install() -> Result<Self, TrainerError> {
        let install = |kind| {
            signal(kind).map_err(|e| {
                TrainerError::new(
                    ErrorClass::Internal,
                    format!("installing a signal handler: {e}"),
                )
            })
        };
        Ok(Self {
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
        })
    }

    /// The next stop signal's number.
    pub async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.term.recv() => nix::sys::signal::Signal::SIGTERM as i32,
            _ = self.int.recv() => nix::sys::signal::Signal::SIGINT as i32,
        }
    }
}

/// The attempt's error when it was asked to stop at `stage` (transient: the run decides what
/// follows, e.g. Cancelled, or a retry after a node drain).
pub fn stopped(signal: i32, stage: &str) -> TrainerError {
    TrainerError::new(
        ErrorClass::Transient,
        format!("stopped by signal {signal} {stage}"),
    )
}
