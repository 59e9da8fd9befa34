//! A watch of one run in local mode: the gateway's shared algorithm
//! ([`kubetrain_gateway::watch::follow`]) over the run table's change feed.

use std::sync::Arc;

use futures::stream::BoxStream;
use kubetrain_api::TrainingRun;
use kubetrain_gateway::watch::{Seen, follow};
use tokio::sync::broadcast;

use crate::pool::{Event, Inner, Key};

impl Inner {
    /// Follow the run at `key`: `current` (read after subscribing to `events`), then each
    /// newer version until it is deleted.
    pub(crate) fn watch_stream(
        self: &Arc<Self>,
        key: Key,
        current: TrainingRun,
        events: broadcast::Receiver<Event>,
    ) -> BoxStream<'static, TrainingRun> {
        let followed = key.clone();
        let see = move |event: &Event| match event {
            Event { key, .. } if *key != followed => Seen::Other,
            Event { deleted: true, .. } => Seen::Gone,
            Event { run, .. } => Seen::Changed(Box::new(run.clone())),
        };
        let inner = Arc::clone(self);
        let reread = move || {
            let inner = Arc::clone(&inner);
            let key = key.clone();
            async move { inner.get(&key).await.ok().flatten() }
        };
        follow(current, events, see, reread)
    }
}
