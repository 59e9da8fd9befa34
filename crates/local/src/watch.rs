//! A watch of one run in local mode: its current version, then each newer one until it is
//! deleted. A watcher that fell behind the change feed re-reads the run from the table.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use kubetrain_api::TrainingRun;
use tokio::sync::broadcast;

use crate::pool::{Event, Inner, Key, version};

impl Inner {
    pub(crate) fn watch_stream(
        self: &Arc<Self>,
        key: Key,
        current: TrainingRun,
        events: broadcast::Receiver<Event>,
    ) -> BoxStream<'static, TrainingRun> {
        struct State {
            inner: Arc<Inner>,
            key: Key,
            events: broadcast::Receiver<Event>,
            first: Option<TrainingRun>,
            seen: u64,
            done: bool,
        }
        let seen = version(&current);
        let state = State {
            inner: Arc::clone(self),
            key,
            events,
            first: Some(current),
            seen,
            done: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            if let Some(first) = state.first.take() {
                return Some((first, state));
            }
            loop {
                if state.done {
                    return None;
                }
                match state.events.recv().await {
                    Ok(event) if event.key == state.key => {
                        if event.deleted {
                            return None;
                        }
                        let v = version(&event.run);
                        if v > state.seen {
                            state.seen = v;
                            return Some((event.run, state));
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Missed events: the stored run is the truth.
                        match state.inner.get(&state.key).await {
                            Ok(Some(run)) if version(&run) > state.seen => {
                                state.seen = version(&run);
                                return Some((run, state));
                            }
                            Ok(Some(_)) => {}
                            Ok(None) | Err(_) => state.done = true,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }
}
