//! What the controller wrote itself, until its watch caches show it.
//!
//! A reconcile may start from caches that do not show the controller's previous write yet
//! (the status it just patched, the Job it just created): the watch events are on their way.
//! Working from such a cache would repeat the write (a second status patch with fresh
//! timestamps, a Job create answered 409). [`Written`] keeps the API server's answer to each
//! write until the cache catches up, and reconcile works from the newer of the two.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kubetrain_api::TrainingRun;

/// A write the cache has not shown within this long is forgotten: the cache is the truth
/// again (a created Job may have been deleted before its watch event arrived, a run may be
/// gone and never be reconciled again).
const MEMORY: Duration = Duration::from_secs(60);

/// One status write: when, the resourceVersion it was based on, and the run it returned.
#[derive(Debug)]
struct StatusWrite {
    at: Instant,
    base: String,
    answer: Arc<TrainingRun>,
}

/// The controller's own writes, by object, until the caches show them.
#[derive(Debug, Default)]
pub struct Written {
    /// Status writes by run UID.
    runs: Mutex<HashMap<String, StatusWrite>>,
    /// Jobs created, with when.
    jobs: Mutex<HashMap<ObjectRef<Job>, (Instant, Job)>>,
}

impl Written {
    /// `cached`, or the run the controller's last status write returned while the cache still
    /// shows the version that write was based on.
    pub fn run(&self, cached: Arc<TrainingRun>) -> Arc<TrainingRun> {
        let (Some(uid), Ok(mut runs)) = (cached.uid(), self.runs.lock()) else {
            return cached;
        };
        match runs.get(&uid) {
            Some(write)
                if cached.resource_version().as_ref() == Some(&write.base)
                    && write.at.elapsed() < MEMORY =>
            {
                write.answer.clone()
            }
            // The cache moved on (it shows the write, or something newer): trust it again.
            Some(_) => {
                runs.remove(&uid);
                cached
            }
            None => cached,
        }
    }

    /// The status write based on `base` returned `answer`.
    pub fn status(&self, base: &TrainingRun, answer: TrainingRun) {
        if let (Some(uid), Some(version), Ok(mut runs)) =
            (base.uid(), base.resource_version(), self.runs.lock())
        {
            runs.retain(|_, write| write.at.elapsed() < MEMORY);
            let write = StatusWrite {
                at: Instant::now(),
                base: version,
                answer: Arc::new(answer),
            };
            runs.insert(uid, write);
        }
    }

    /// The Job at `key`: the cached one, else one created within [`MEMORY`].
    pub fn job(&self, key: &ObjectRef<Job>, cached: Option<Job>) -> Option<Job> {
        let Ok(mut jobs) = self.jobs.lock() else {
            return cached;
        };
        match cached {
            Some(job) => {
                jobs.remove(key);
                Some(job)
            }
            None => match jobs.get(key) {
                Some((at, job)) if at.elapsed() < MEMORY => Some(job.clone()),
                Some(_) => {
                    jobs.remove(key);
                    None
                }
                None => None,
            },
        }
    }

    /// The controller created `job`.
    pub fn job_created(&self, job: &Job) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.retain(|_, (at, _)| at.elapsed() < MEMORY);
            jobs.insert(ObjectRef::from_obj(job), (Instant::now(), job.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use kubetrain_api::TrainingRun;

    #[test]
    fn a_status_write_stands_in_for_the_cache_until_the_cache_moves_on() {
        let written = Written::default();
        let base = TrainingRun::test("churn").at_version("10");
        let mut answer = TrainingRun::test("churn").at_version("11");
        answer.status = Some(Default::default());
        written.status(&base, answer);

        // The cache still shows version 10: reconcile sees the written run.
        let seen = written.run(Arc::new(base.clone()));
        assert_eq!(seen.resource_version().as_deref(), Some("11"));
        assert!(seen.status.is_some());
        // The cache shows 11 (or anything else): the cache wins and the memory is dropped.
        let newer = TrainingRun::test("churn").at_version("12");
        assert_eq!(
            written.run(Arc::new(newer)).resource_version().as_deref(),
            Some("12")
        );
        assert_eq!(
            written.run(Arc::new(base)).resource_version().as_deref(),
            Some("10")
        );
    }

    #[test]
    fn a_created_job_stands_in_for_the_cache_until_the_cache_has_it() {
        let written = Written::default();
        let job: Job = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "churn-1", "namespace": "ml"}}),
        )
        .unwrap();
        let key = ObjectRef::from_obj(&job);
        assert!(written.job(&key, None).is_none());
        written.job_created(&job);
        assert_eq!(written.job(&key, None).unwrap().name_any(), "churn-1");
        // Once the cache has it, the cache is the truth (also after it is deleted).
        assert!(written.job(&key, Some(job)).is_some());
        assert!(written.job(&key, None).is_none());
    }
}
