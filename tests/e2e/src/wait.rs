//! Waiting on conditions with deadlines: tests never sleep a fixed time.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

/// How long a test waits for a state the environment reaches in a few seconds when healthy.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

const POLL: Duration = Duration::from_millis(200);

/// Waits until the pod is in one of `phases` and returns it.
pub async fn wait_for_pod_phase(pods: &Api<Pod>, name: &str, phases: &[&str]) -> Result<Pod> {
    wait_for(
        &format!("pod {name} to be {phases:?}"),
        DEFAULT_TIMEOUT,
        || async {
            let pod = pods.get(name).await?;
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            Ok(phases.contains(&phase.as_str()).then_some(pod))
        },
    )
    .await
}

/// Polls `check` until it returns `Some`, failing after `timeout` with what was awaited.
/// Errors from `check` are kept and reported if the deadline passes (the state may still be
/// settling), never swallowed.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if Instant::now() >= deadline {
            match last_error {
                Some(error) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {error:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use anyhow::bail;

    #[tokio::test]
    async fn wait_for_returns_the_value_or_times_out_with_the_last_error() {
        let mut calls = 0;
        let got = wait_for("three calls", Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move { Ok((n >= 3).then_some(n)) }
        })
        .await
        .unwrap();
        assert_eq!(got, 3);

        let error = wait_for::<(), _, _>("never", Duration::from_millis(300), || async {
            bail!("still broken")
        })
        .await
        .unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("never") && message.contains("still broken"),
            "{message}"
        );
    }
}
