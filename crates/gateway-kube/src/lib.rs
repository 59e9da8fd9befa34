//! The gateway's Kubernetes backend: every run is a TrainingRun object, reads come from a
//! watch cache, and callers are authenticated with TokenReview and authorized with
//! SubjectAccessReview.

mod auth;
mod errors;
mod runs;

pub use auth::{CACHE_TTL, KubeAuth};
pub use errors::{Target, from_kube, from_status};
pub use runs::{FIELD_MANAGER, KubeRuns};
