//! Serving the router with a graceful, bounded drain.
//!
//! # Expected flow
//! `serve` accepts connections until `shutdown` completes, then stops accepting, tells every
//! open Server-Sent Events stream to end (they would otherwise keep their connection open for
//! ever), waits for the requests in flight, and returns. If they take longer than the drain
//! timeout, the remaining connections are dropped.

use std::future::Future;
use std::time::Duration;

use axum::{Extension, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long [`serve`] waits for requests in flight after shutdown began.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Tells long-lived answers (SSE) that the server is shutting down; a request extension set
/// by [`serve`].
#[derive(Debug, Clone)]
pub(crate) struct ShutdownSignal(watch::Receiver<bool>);

impl ShutdownSignal {
    /// Completes once shutdown began (never, if the server is not shutting down).
    pub(crate) async fn wait(mut self) {
        if self.0.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Serve `router` on `listener` until `shutdown` completes, then drain (at most
/// [`DEFAULT_DRAIN_TIMEOUT`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_drain(listener, router, shutdown, DEFAULT_DRAIN_TIMEOUT).await
}

/// [`serve`] with another drain timeout.
pub async fn serve_with_drain(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let (stopping, receiver) = watch::channel(false);
    let signal = ShutdownSignal(receiver.clone());
    let router = router.layer(Extension(signal));
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: draining requests in flight");
        let _ = stopping.send(true);
    });
    let deadline = async move {
        ShutdownSignal(receiver).wait().await;
        tokio::time::sleep(drain).await;
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!(?drain, "drain timeout passed; dropping the remaining connections");
            Ok(())
        }
    }
}
