//! What every route shares: the backend, the authorizer, where staged data goes, the limits,
//! the metrics and the cache of parsed models.

use std::sync::Arc;
use std::time::Duration;

use kubetrain_storage::Location;

use crate::backend::{Authorizer, Runs};
use crate::metrics::HttpMetrics;
use crate::models::ModelCache;

/// Bounds on what one request may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest JSON request body in bytes (413 above it).
    pub json_body_bytes: usize,
    /// Largest dataset upload (`POST .../datasets`) in bytes (413 above it).
    pub upload_bytes: u64,
    /// Time a non-streaming request may take before it is answered 504. Server-Sent Events,
    /// model downloads and uploads are not bounded by it.
    pub request_timeout: Duration,
    /// Requests served at once; more are refused at once with 503 and `Retry-After`.
    pub max_concurrent_requests: usize,
    /// Parsed models kept for `predict`.
    pub model_cache_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            json_body_bytes: 64 * 1024 * 1024,
            upload_bytes: 1024 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 1024,
            model_cache_size: 64,
        }
    }
}

/// How the gateway is set up, apart from its backend and authorizer.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where uploaded datasets, the seed route's inline data and the seed route's models go
    /// (`s3://bucket/prefix/` or `file:///dir/`). Without it, `POST .../datasets` and
    /// `POST /train` answer 501.
    pub staging: Option<Location>,
    /// The namespace the seed routes (`/train`, `/status/{task_id}`) create and read runs in.
    pub seed_namespace: String,
    /// `spec.storage` of the runs the gateway creates itself (the seed route's): the Secret
    /// (in the seed namespace) with the credentials their trainer pods read the staged data
    /// and write the model with, and the S3 endpoint and region. `None`: no `spec.storage`,
    /// the controller's defaults and ambient credentials apply.
    pub seed_storage: Option<kubetrain_api::StorageSpec>,
    /// Request bounds.
    pub limits: Limits,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            staging: None,
            seed_namespace: "default".to_owned(),
            seed_storage: None,
            limits: Limits::default(),
        }
    }
}

/// The state of the router: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub(crate) backend: Arc<dyn Runs>,
    pub(crate) auth: Arc<dyn Authorizer>,
    pub(crate) config: Arc<GatewayConfig>,
    pub(crate) metrics: Arc<HttpMetrics>,
    pub(crate) models: Arc<ModelCache>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for [`crate::app`]: runs live in `backend`, every request is checked by `auth`.
    pub fn new(backend: Arc<dyn Runs>, auth: Arc<dyn Authorizer>, config: GatewayConfig) -> Self {
        let models = Arc::new(ModelCache::new(config.limits.model_cache_size));
        AppState {
            backend,
            auth,
            config: Arc::new(config),
            metrics: Arc::new(HttpMetrics::new()),
            models,
        }
    }

    /// The configuration the state was built with.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }
}
