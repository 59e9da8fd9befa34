//! Helpers for the end-to-end tests: they run against the environment of `tests/cluster/up.sh`
//! (a real API server, controller manager, scheduler, SeaweedFS S3 and the process node), which
//! they find through the variables of its env file.
//!
//! # Expected flow
//! ```no_run
//! # async fn t() -> anyhow::Result<()> {
//! let Some(env) = kubetrain_e2e::TestEnv::from_env() else { return Ok(()) };
//! let ns = env.namespace("my-test").await?;
//! // ... create objects in `ns.name`, then wait on conditions:
//! kubetrain_e2e::wait_for("the job to complete", kubetrain_e2e::DEFAULT_TIMEOUT, || async { Ok(Some(())) }).await?;
//! ns.delete().await?;
//! # Ok(()) }
//! ```
//!
//! # Caveats
//! Tests run in parallel: each one works in its own namespace; cluster-scoped objects (CRDs)
//! must be applied idempotently.

pub mod bench;
pub mod cli;
pub mod env;
pub mod repo;
pub mod wait;

pub use bench::{api_requests, cpu_seconds, print_api_requests, print_cpu};
pub use env::{
    TestEnv, TestNamespace, client_from, free_port, kubetrain_bin, service_account_token,
    test_data_path,
};
pub use wait::{DEFAULT_TIMEOUT, wait_for, wait_for_pod_phase};
