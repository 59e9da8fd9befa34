//! The run lifecycle's words: the reasons of its conditions and the messages of its phases,
//! shared by the controller (which reads them off a Job) and `kubetrain local` (which reads
//! them off a process), so a run reads the same wherever it ran.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::conditions::{self, Observation};
use crate::{ModelRef, Phase, TrainingRunStatus, condition};

/// `Running=False`: training ended (success or failure).
pub const FINISHED: &str = "Finished";
/// `Running=True`: the trainer is running.
pub const TRAINING: &str = "Training";
/// `Running=False`: not started yet; the message says what it waits for.
pub const WAITING: &str = "Waiting";
/// `Accepted=False` and `Failed=True`: the spec cannot run.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// `Failed=True`: `spec.cancel` was set.
pub const CANCELLED: &str = "Cancelled";
/// `Complete=True`: the model was trained.
pub const SUCCEEDED: &str = "Succeeded";
/// `Suspended=True`: `spec.suspend` (or a queue) holds the run.
pub const SUSPENDED: &str = "Suspended";
/// `Suspended=False`: never suspended.
pub const NOT_SUSPENDED: &str = "NotSuspended";
/// `Suspended=False` after a suspended run was resumed.
pub const RESUMED: &str = "Resumed";
/// `ModelReady=True`: the model is in storage.
pub const MODEL_STORED: &str = "ModelStored";
/// `Failed=True`: not started within `startDeadlineSeconds`.
pub const START_DEADLINE_EXCEEDED: &str = "StartDeadlineExceeded";
/// `Failed=True`: active longer than `activeDeadlineSeconds`.
pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
/// `Failed=True`: every attempt (`backoffLimit` + 1) failed.
pub const BACKOFF_LIMIT_EXCEEDED: &str = "BackoffLimitExceeded";
/// `Failed=True` in local mode: `kubetrain local` stopped while the run trained.
pub const INTERRUPTED: &str = "Interrupted";

/// The message of a cancelled run.
pub const CANCELLED_MESSAGE: &str = "spec.cancel was set";
/// The message of a successful run.
pub const SUCCEEDED_MESSAGE: &str = "the model was trained";

/// A run's `message`: `<reason>: <message>`.
pub fn phase_message(reason: &str, message: &str) -> String {
    format!("{reason}: {message}")
}

/// The message of a run whose attempts all failed, the last with `last`.
pub fn all_attempts_failed(last: &str) -> String {
    format!("all attempts failed; the last one: {last}")
}

/// The message of a run not started within `deadline` seconds, last seen `waiting`.
pub fn start_deadline_exceeded(deadline: i64, waiting: &str) -> String {
    format!("not started within startDeadlineSeconds ({deadline}s); last seen: {waiting}")
}

/// The message of a run stopped by `kubetrain local` stopping during attempt `attempt`.
pub fn interrupted(attempt: i32) -> String {
    format!(
        "kubetrain local stopped while the run was training (attempt {attempt}); create the run again to retrain"
    )
}

/// The message of the `ModelReady` condition.
pub fn model_stored(uri: &str, sha256: &str) -> String {
    format!("model stored at {uri} (sha256 {sha256})")
}

/// A run's status being changed at `now` for `metadata.generation` `generation`: the
/// transitions both the controller and `kubetrain local` make, written once.
///
/// # Guarantees
/// Conditions are merged ([`crate::conditions::set`]): `lastTransitionTime` moves only when
/// a condition flips. `completionTime` is set once, by the first finishing transition.
#[derive(Debug)]
pub struct StatusChange<'a> {
    /// The status being changed.
    pub status: &'a mut TrainingRunStatus,
    /// The generation the change observes.
    pub generation: i64,
    /// When the change happens.
    pub now: Timestamp,
}

impl StatusChange<'_> {
    /// Record condition `type_` as `value` with `reason` and `message`.
    pub fn condition(
        &mut self,
        type_: &str,
        value: bool,
        reason: &str,
        message: impl Into<String>,
    ) {
        let observation = Observation {
            type_,
            status: value,
            reason,
            message: message.into(),
        };
        conditions::set(
            &mut self.status.conditions,
            observation,
            self.generation,
            self.now,
        );
    }

    /// Suspended: Queued until resumed.
    pub fn suspend(&mut self) {
        self.condition(
            condition::SUSPENDED,
            true,
            SUSPENDED,
            "the run is suspended",
        );
        self.condition(condition::RUNNING, false, SUSPENDED, "the run is suspended");
        self.status.phase = Some(Phase::Queued);
        self.status.message = Some(phase_message("Queued", "the run is suspended"));
    }

    /// Not suspended (`Resumed` when it had been).
    pub fn not_suspended(&mut self, reason: &str) {
        self.condition(
            condition::SUSPENDED,
            false,
            reason,
            "the run is not suspended",
        );
    }

    /// Not started yet, in `phase` (Queued: for a worker; Pending: for its Pod or next
    /// attempt): `waiting` says for what on the Running condition, `message` on the run.
    pub fn wait(&mut self, phase: Phase, waiting: &str, message: String) {
        self.condition(condition::RUNNING, false, WAITING, waiting);
        self.status.phase = Some(phase);
        self.status.message = Some(message);
    }

    /// A trainer is running (`reason`, `message` on the Running condition; `summary` as the
    /// run's message); the first one sets `startTime`.
    pub fn run(&mut self, reason: &str, message: impl Into<String>, summary: &str) {
        self.condition(condition::RUNNING, true, reason, message);
        if self.status.start_time.is_none() {
            self.status.start_time = Some(Time(self.now));
        }
        self.status.phase = Some(Phase::Running);
        self.status.message = Some(summary.to_owned());
    }

    /// Training ended in `phase` with the run's `message`.
    pub fn finish(&mut self, phase: Phase, message: String) {
        self.condition(condition::RUNNING, false, FINISHED, "training ended");
        self.status.phase = Some(phase);
        self.status.message = Some(message);
        if self.status.completion_time.is_none() {
            self.status.completion_time = Some(Time(self.now));
        }
    }

    /// The run failed for `reason`.
    pub fn fail(&mut self, reason: &str, message: &str) {
        self.condition(condition::FAILED, true, reason, message);
        self.finish(Phase::Failed, phase_message(reason, message));
    }

    /// `spec.cancel` ended the run.
    pub fn cancel(&mut self) {
        self.condition(condition::FAILED, true, CANCELLED, CANCELLED_MESSAGE);
        self.finish(
            Phase::Cancelled,
            phase_message(CANCELLED, CANCELLED_MESSAGE),
        );
    }

    /// The model was trained.
    pub fn succeed(&mut self) {
        self.condition(condition::COMPLETE, true, SUCCEEDED, SUCCEEDED_MESSAGE);
        self.finish(
            Phase::Succeeded,
            phase_message(SUCCEEDED, SUCCEEDED_MESSAGE),
        );
    }

    /// `ModelReady` from the stored model the trainer reported, if it did yet.
    pub fn model_ready(&mut self, model: Option<&ModelRef>) {
        match model {
            Some(model) => {
                self.condition(
                    condition::MODEL_READY,
                    true,
                    MODEL_STORED,
                    model_stored(&model.uri, &model.sha256),
                );
            }
            None => self.condition(
                condition::MODEL_READY,
                false,
                "WaitingForTrainer",
                "the trainer has not reported the stored model yet",
            ),
        }
    }
}

/// When the start deadline counts from: the run's creation, or the last time it was resumed.
pub fn start_clock(created: Option<Timestamp>, status: Option<&TrainingRunStatus>) -> Timestamp {
    let created = created.unwrap_or(Timestamp::UNIX_EPOCH);
    let resumed = status
        .and_then(|s| conditions::get(&s.conditions, condition::SUSPENDED))
        .filter(|c| c.status == "False" && c.reason == RESUMED)
        .map(|c| c.last_transition_time.0);
    resumed.map_or(created, |resumed| resumed.max(created))
}

/// Whether the Suspended condition says the run was suspended (or resumed) before: a run
/// that is not suspended now is then `Resumed`, else `NotSuspended`.
pub fn was_suspended(status: &TrainingRunStatus) -> bool {
    conditions::is_true(&status.conditions, condition::SUSPENDED)
        || conditions::get(&status.conditions, condition::SUSPENDED)
            .is_some_and(|c| c.reason == RESUMED)
}
