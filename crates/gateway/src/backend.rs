//! Where runs live. The routes speak only to these traits, so the Kubernetes backend
//! (`kubetrain-gateway-kube`: TrainingRun objects, a watch cache, TokenReview and
//! SubjectAccessReview) and the local backend (`kubetrain-local`: SQLite and a process pool)
//! serve the same REST API.

use futures::stream::BoxStream;
use kubetrain_api::{Phase, TrainingRun};

pub use kubetrain_api::FieldError;

use crate::watch::RunChange;

/// Everything a backend can answer instead of a run. The routes map each variant to exactly
/// one HTTP status; [`BackendError::Internal`] text is logged, never returned.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// 404: no run of that name in that namespace.
    #[error("trainingruns \"{name}\" not found in namespace \"{namespace}\"")]
    NotFound {
        /// The namespace.
        namespace: String,
        /// The run's name.
        name: String,
    },
    /// 409: a run of that name exists already.
    #[error("trainingruns \"{name}\" already exists in namespace \"{namespace}\"")]
    AlreadyExists {
        /// The namespace.
        namespace: String,
        /// The run's name.
        name: String,
    },
    /// 409: the request conflicts with the run's current state (e.g. a concurrent update).
    #[error("{0}")]
    Conflict(String),
    /// 422: the run is invalid; one entry per offending field.
    #[error("the run is invalid: {}", .0.iter().map(|c| format!("{}: {}", c.field, c.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// 400: the request itself is malformed (a bad label selector, continue token, ...).
    #[error("{0}")]
    BadRequest(String),
    /// 503: the state store (API server, database) cannot be reached; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// 500: anything else. The text goes to the log, the client sees a generic message.
    #[error("{0}")]
    Internal(String),
}

/// Filters and pagination for [`Runs::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only runs in this phase.
    pub phase: Option<Phase>,
    /// A Kubernetes label selector (`app=churn,tier!=dev`).
    pub label_selector: Option<String>,
    /// At most this many items; `None` means all.
    pub limit: Option<u32>,
    /// The `continue` token of the previous page.
    pub continue_token: Option<String>,
}

/// One page of runs.
#[derive(Debug, Clone, Default)]
pub struct RunList {
    /// The runs of this page.
    pub items: Vec<TrainingRun>,
    /// Present when there are more items; pass it back as [`ListQuery::continue_token`].
    pub continue_token: Option<String>,
}

/// The store of TrainingRuns behind the REST API.
///
/// `create` receives a run whose `metadata.namespace` is set to `namespace` and which has
/// `metadata.name` or `metadata.generateName`; the backend fills in uid, creationTimestamp,
/// resourceVersion and (for `generateName`) the name, validates the spec exactly as the
/// Kubernetes API server would, and starts training.
#[async_trait::async_trait]
pub trait Runs: Send + Sync + 'static {
    /// Store `run` in `namespace` and start it; returns it as stored.
    async fn create(&self, namespace: &str, run: TrainingRun) -> Result<TrainingRun, BackendError>;
    /// The run `namespace/name`.
    async fn get(&self, namespace: &str, name: &str) -> Result<TrainingRun, BackendError>;
    /// One page of the runs in `namespace` (every namespace when empty) that `query` selects.
    async fn list(&self, namespace: &str, query: &ListQuery) -> Result<RunList, BackendError>;
    /// Delete the run (its training stops; its model stays in storage). Returns the run as it
    /// was last seen.
    async fn delete(&self, namespace: &str, name: &str) -> Result<TrainingRun, BackendError>;
    /// Set `spec.cancel: true`; the run ends Cancelled. Cancelling a finished run changes
    /// nothing and is not an error.
    async fn cancel(&self, namespace: &str, name: &str) -> Result<TrainingRun, BackendError>;
    /// The run as it is now, then the run after every change, ending after the run is deleted.
    /// The caller stops reading once the phase is terminal.
    async fn watch(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BoxStream<'static, TrainingRun>, BackendError>;
    /// Every change of the runs in `namespace` from now on, starting with
    /// [`RunChange::Resync`] (list after this returns, and again after every `Resync`); ends
    /// when the backend shuts down.
    async fn watch_namespace(
        &self,
        namespace: &str,
    ) -> Result<BoxStream<'static, RunChange>, BackendError>;
    /// Whether the backend can serve requests (watch cache synced, database open).
    async fn ready(&self) -> bool;
}

/// Who is calling, as the authenticator established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user name (`system:serviceaccount:ml:app` for a ServiceAccount).
    pub user: String,
    /// The user's groups.
    pub groups: Vec<String>,
}

/// What a request needs permission for, in Kubernetes RBAC terms
/// (`create trainingruns.kubetrain.dev` in namespace `ml`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Access {
    /// get, list, watch, create, patch, delete.
    pub verb: &'static str,
    /// Always `trainingruns` today.
    pub resource: &'static str,
    /// The namespace of the run(s).
    pub namespace: String,
    /// The run's name, when the call is about one run.
    pub name: Option<String>,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}.{} in namespace \"{}\"",
            self.verb,
            self.resource,
            kubetrain_api::GROUP,
            self.namespace
        )
    }
}

/// Why a request may not proceed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// 401: no token, or a token the authenticator does not accept.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: authenticated, but not allowed to do `access`.
    #[error("{user} may not {access}")]
    Forbidden {
        /// Who asked.
        user: String,
        /// What for.
        access: Access,
    },
    /// 503: the authenticator itself cannot be reached.
    #[error("{0}")]
    Unavailable(String),
}

/// Authentication and authorization of one request.
#[async_trait::async_trait]
pub trait Authorizer: Send + Sync + 'static {
    /// `token` is the bearer token of the request, if any.
    async fn authorize(&self, token: Option<&str>, access: &Access) -> Result<Caller, AuthError>;
}
