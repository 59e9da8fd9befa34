//! The one shutdown signal of every long-running subcommand.

/// Completes on SIGTERM (how Kubernetes stops a pod) or SIGINT (Ctrl-C), logging which. If
/// the signals cannot be listened for, it never completes (the process then stops on SIGKILL)
/// and says so.
pub async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            }
        }
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(%error, "cannot listen for signals; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}
