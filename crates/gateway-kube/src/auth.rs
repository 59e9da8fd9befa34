//! [`KubeAuth`]: bearer tokens checked by the API server itself. A TokenReview says who the
//! token belongs to; a SubjectAccessReview says whether that user may do exactly what the
//! request needs (`create trainingruns.kubetrain.dev` in namespace `ml`), so the gateway
//! grants precisely what RBAC grants, and `kubectl auth can-i` predicts every answer.
//!
//! Both answers are cached for [`CACHE_TTL`] under the SHA-256 of the token (never the token
//! itself), so a client polling a run costs the API server two reviews per TTL, not per call.
//! Failures to reach the API server are never cached.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};
use kubetrain_gateway::{Access, AuthError, Authorizer, BackendError, Caller};
use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use crate::errors::{Target, from_kube};

/// How long a review's answer is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(10);

/// Tokens (and token + access pairs) remembered at once.
const CACHE_ENTRIES: usize = 10_000;

type TokenHash = [u8; 32];

/// Who a token belongs to, as the TokenReview said.
#[derive(Debug, Clone)]
struct User {
    name: String,
    uid: Option<String>,
    groups: Vec<String>,
    extra: Option<BTreeMap<String, Vec<String>>>,
}

/// A review's answer and when it stops counting.
#[derive(Debug, Clone)]
struct Cached<T> {
    value: T,
    until: Instant,
}

/// Authentication with TokenReview, authorization with SubjectAccessReview.
pub struct KubeAuth {
    client: Client,
    ttl: Duration,
    /// `Err(reason)`: the token was reviewed and not accepted.
    users: Cache<TokenHash, Cached<Result<Arc<User>, String>>>,
    decisions: Cache<(TokenHash, Access), Cached<bool>>,
}

impl std::fmt::Debug for KubeAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeAuth")
            .field("ttl", &self.ttl)
            .field("users", &self.users.len())
            .field("decisions", &self.decisions.len())
            .finish_non_exhaustive()
    }
}

impl KubeAuth {
    /// Reviews through `client`, whose identity needs `create` on `tokenreviews` and
    /// `subjectaccessreviews` (the `system:auth-delegator` ClusterRole grants both).
    pub fn new(client: Client) -> Self {
        Self::with_ttl(client, CACHE_TTL)
    }

    /// As [`KubeAuth::new`], answers reused for `ttl` (zero: never).
    pub fn with_ttl(client: Client, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            users: Cache::new(CACHE_ENTRIES),
            decisions: Cache::new(CACHE_ENTRIES),
        }
    }

    async fn user(&self, token: &str, hash: TokenHash) -> Result<Arc<User>, AuthError> {
        if let Some(hit) = self.users.get(&hash).filter(|c| c.until > Instant::now()) {
            return hit.value.map_err(AuthError::Unauthenticated);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: None,
            },
            ..Default::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|error| unavailable("TokenReview", error))?;
        let status = reviewed.status.unwrap_or_default();
        let value = match (status.authenticated, status.user) {
            (Some(true), Some(user)) => Ok(Arc::new(User {
                name: user.username.unwrap_or_default(),
                uid: user.uid,
                groups: user.groups.unwrap_or_default(),
                extra: user.extra,
            })),
            _ => Err(
                "the bearer token is not valid (expired, revoked or not issued by this cluster)"
                    .to_owned(),
            ),
        };
        if let Some(error) = status.error.as_deref().filter(|e| !e.is_empty()) {
            tracing::debug!(error, "TokenReview did not authenticate the token");
        }
        self.users.insert(
            hash,
            Cached {
                value: value.clone(),
                until: Instant::now() + self.ttl,
            },
        );
        value.map_err(AuthError::Unauthenticated)
    }

    async fn allowed(
        &self,
        user: &User,
        hash: TokenHash,
        access: &Access,
    ) -> Result<bool, AuthError> {
        let key = (hash, access.clone());
        if let Some(hit) = self
            .decisions
            .get(&key)
            .filter(|c| c.until > Instant::now())
        {
            return Ok(hit.value);
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.name.clone()),
                uid: user.uid.clone(),
                groups: Some(user.groups.clone()),
                extra: user.extra.clone(),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(kubetrain_api::GROUP.to_owned()),
                    version: Some(kubetrain_api::VERSION.to_owned()),
                    resource: Some(access.resource.to_owned()),
                    verb: Some(access.verb.to_owned()),
                    namespace: Some(access.namespace.clone()),
                    name: access.name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviewed = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|error| unavailable("SubjectAccessReview", error))?;
        let allowed = reviewed
            .status
            .is_some_and(|s| s.allowed && s.denied != Some(true));
        self.decisions.insert(
            key,
            Cached {
                value: allowed,
                until: Instant::now() + self.ttl,
            },
        );
        Ok(allowed)
    }
}

#[async_trait::async_trait]
impl Authorizer for KubeAuth {
    async fn authorize(&self, token: Option<&str>, access: &Access) -> Result<Caller, AuthError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AuthError::Unauthenticated(
                    "a bearer token is required (Authorization: Bearer <token>)".to_owned(),
                )
            })?;
        let hash: TokenHash = Sha256::digest(token.as_bytes()).into();
        let user = self.user(token, hash).await?;
        if self.allowed(&user, hash, access).await? {
            Ok(Caller {
                user: user.name.clone(),
                groups: user.groups.clone(),
            })
        } else {
            Err(AuthError::Forbidden {
                user: user.name.clone(),
                access: access.clone(),
            })
        }
    }
}

/// A review that could not be made. Only an unreachable API server is worth a retry (503);
/// anything else (the gateway's own identity may not create reviews) is the gateway's
/// misconfiguration, also answered 503 since the caller cannot fix it, and logged.
fn unavailable(what: &str, error: kube::Error) -> AuthError {
    let target = Target {
        namespace: "",
        name: "",
        creating: false,
    };
    match from_kube(error, target) {
        BackendError::Unavailable(message) => AuthError::Unavailable(message),
        other => {
            tracing::error!(error = %other, "creating a {what} failed: does the gateway's identity have RBAC to create {what}s?");
            AuthError::Unavailable(format!(
                "cannot check the request's credentials ({what} failed)"
            ))
        }
    }
}
