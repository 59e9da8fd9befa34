//! Following one run, or every run of a namespace, through a feed of changes: the algorithms
//! every [`crate::Runs`] backend's `watch` and `watch_namespace` share.
//!
//! # Guarantees
//! [`follow`]: the stream starts with the run as it is, then yields each newer version of it once, in
//! order, and ends when the run is deleted or the feed closes. A subscriber that falls behind
//! the feed (a lagged broadcast receiver), or a feed that was re-listed, re-reads the run
//! instead of guessing what it missed. Versions are compared as numbers where both are (etcd
//! revisions, the local store's counter) so that a re-read never makes the stream go back.

use std::future::Future;

use futures::StreamExt;
use futures::stream::BoxStream;
use kube::ResourceExt;
use kubetrain_api::TrainingRun;
use tokio::sync::broadcast;

/// A change to one of the runs of a namespace, as [`crate::Runs::watch_namespace`] yields it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunChange {
    /// The run was created or changed: this is the run now.
    Applied(Box<TrainingRun>),
    /// The run was deleted: this is the run as last seen.
    Deleted(Box<TrainingRun>),
    /// Changes may have been missed (the stream just started, the subscriber fell behind, or
    /// the feed was re-listed): list the runs again. Always the first item.
    Resync,
}

/// Every change of a namespace's runs: [`RunChange::Resync`] first (the caller lists after
/// subscribing, so nothing between its list and the stream is lost), then what `see` finds in
/// `changes` (`None`: not about this namespace), a `Resync` whenever the subscriber fell
/// behind the feed; ends when the feed closes.
pub fn namespace_feed<C, See>(
    changes: broadcast::Receiver<C>,
    see: See,
) -> BoxStream<'static, RunChange>
where
    C: Clone + Send + 'static,
    See: Fn(&C) -> Option<RunChange> + Send + 'static,
{
    futures::stream::once(async { RunChange::Resync })
        .chain(futures::stream::unfold(
            (changes, see),
            |(mut changes, see)| async move {
                loop {
                    match changes.recv().await {
                        Ok(change) => {
                            if let Some(change) = see(&change) {
                                return Some((change, (changes, see)));
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::debug!(missed, "namespace watch lagged; resync");
                            return Some((RunChange::Resync, (changes, see)));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
        .boxed()
}

/// What one item of a change feed says about the followed run.
#[derive(Debug)]
pub enum Seen {
    /// A version of the followed run (boxed: a run is large, the other answers small).
    Changed(Box<TrainingRun>),
    /// The followed run was deleted.
    Gone,
    /// Something about another run.
    Other,
    /// The feed may have missed changes (it was re-listed): read the run again.
    Stale,
}

/// Follow one run: `first` (read after subscribing to `changes`), then what `see` finds in
/// `changes`; `reread` reads the run again (`None`: it is gone, or cannot be read).
pub fn follow<C, See, Reread, Read>(
    first: TrainingRun,
    changes: broadcast::Receiver<C>,
    see: See,
    reread: Reread,
) -> BoxStream<'static, TrainingRun>
where
    C: Clone + Send + 'static,
    See: Fn(&C) -> Seen + Send + 'static,
    Reread: Fn() -> Read + Send + 'static,
    Read: Future<Output = Option<TrainingRun>> + Send + 'static,
{
    struct State<C, See, Reread> {
        changes: broadcast::Receiver<C>,
        see: See,
        reread: Reread,
        first: Option<TrainingRun>,
        last: Option<String>,
    }
    let state = State {
        changes,
        see,
        reread,
        first: Some(first),
        last: None,
    };
    futures::stream::unfold(state, |mut state| async move {
        if let Some(first) = state.first.take() {
            state.last = first.resource_version();
            return Some((first, state));
        }
        loop {
            let run = match state.changes.recv().await {
                Ok(change) => match (state.see)(&change) {
                    Seen::Changed(run) => *run,
                    Seen::Gone => return None,
                    Seen::Other => continue,
                    Seen::Stale => (state.reread)().await?,
                },
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "watch lagged; re-reading the run");
                    (state.reread)().await?
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            if newer(run.resource_version().as_deref(), state.last.as_deref()) {
                state.last = run.resource_version();
                return Some((run, state));
            }
        }
    })
    .boxed()
}

/// Whether `version` comes after `last`: greater where both are numbers, else different.
fn newer(version: Option<&str>, last: Option<&str>) -> bool {
    match (
        version.and_then(|v| v.parse::<u64>().ok()),
        last.and_then(|v| v.parse::<u64>().ok()),
    ) {
        (Some(version), Some(last)) => version > last,
        _ => version != last,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(version: &str) -> TrainingRun {
        TrainingRun::test("churn").at_version(version)
    }

    /// Feed items: `Some(version)` a change of the followed run, `None` its deletion.
    type Item = Option<&'static str>;

    fn see(item: &Item) -> Seen {
        match item {
            Some("other") => Seen::Other,
            Some("relisted") => Seen::Stale,
            Some(version) => Seen::Changed(Box::new(run(version))),
            None => Seen::Gone,
        }
    }

    async fn versions(stream: BoxStream<'static, TrainingRun>) -> Vec<String> {
        stream
            .map(|r| r.resource_version().unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn each_newer_version_once_until_the_run_is_gone() {
        let (tx, rx) = broadcast::channel::<Item>(16);
        for item in [
            Some("5"),
            Some("6"),
            Some("other"),
            Some("6"),
            Some("7"),
            None,
            Some("8"),
        ] {
            tx.send(item).unwrap();
        }
        let stream = follow(run("5"), rx, see, || async { Some(run("99")) });
        assert_eq!(versions(stream).await, ["5", "6", "7"]);
    }

    #[tokio::test]
    async fn a_lagged_or_relisted_feed_rereads_and_never_goes_back() {
        let (tx, rx) = broadcast::channel::<Item>(2);
        // Four items into a feed of two: the subscriber lags and re-reads version 9, then
        // gets the two oldest kept items (8: older, skipped; relisted: read 9 again, skipped).
        for item in [Some("6"), Some("7"), Some("8"), Some("relisted")] {
            tx.send(item).unwrap();
        }
        drop(tx);
        let stream = follow(run("5"), rx, see, || async { Some(run("9")) });
        assert_eq!(versions(stream).await, ["5", "9"]);
    }

    #[tokio::test]
    async fn a_run_that_cannot_be_read_again_ends_the_stream() {
        let (tx, rx) = broadcast::channel::<Item>(16);
        tx.send(Some("relisted")).unwrap();
        let stream = follow(run("5"), rx, see, || async { None });
        assert_eq!(versions(stream).await, ["5"]);
    }

    #[tokio::test]
    async fn a_namespace_feed_starts_with_a_resync_and_resyncs_after_lagging() {
        let (tx, rx) = broadcast::channel::<Item>(2);
        let see = |item: &Item| match item {
            Some("other") => None,
            Some(version) => Some(RunChange::Applied(Box::new(run(version)))),
            None => Some(RunChange::Deleted(Box::new(run("0")))),
        };
        let feed = namespace_feed(rx, see);
        // Three items into a feed of two: the first is lost, which the subscriber hears of.
        for item in [Some("6"), Some("other"), None] {
            tx.send(item).unwrap();
        }
        drop(tx);
        let changes: Vec<RunChange> = feed.collect().await;
        assert_eq!(
            changes,
            [
                RunChange::Resync,
                RunChange::Resync,
                RunChange::Deleted(Box::new(run("0")))
            ]
        );
    }

    #[test]
    fn versions_compare_as_numbers_where_they_are() {
        assert!(newer(Some("10"), Some("9")));
        assert!(!newer(Some("9"), Some("10")));
        assert!(newer(Some("b"), Some("a")));
        assert!(!newer(Some("a"), Some("a")));
        assert!(newer(Some("1"), None));
    }
}
