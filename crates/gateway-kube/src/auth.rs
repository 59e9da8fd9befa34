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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Json;
    use axum::routing::post;
    use serde_json::{Value, json};

    use super::*;

    /// An API server that knows one token (`good`, user `alice`) and allows her `get` in
    /// namespace `ml` only; it counts the reviews it answers.
    async fn api_server() -> (Client, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tokens = Arc::new(AtomicUsize::new(0));
        let accesses = Arc::new(AtomicUsize::new(0));
        let (t, a) = (tokens.clone(), accesses.clone());
        let app = axum::Router::new()
            .route(
                "/apis/authentication.k8s.io/v1/tokenreviews",
                post(move |Json(review): Json<Value>| async move {
                    t.fetch_add(1, Ordering::SeqCst);
                    let good = review["spec"]["token"] == "good";
                    let mut answer = review.clone();
                    answer["status"] = if good {
                        json!({"authenticated": true, "user": {"username": "alice", "uid": "u-1", "groups": ["team"]}})
                    } else {
                        json!({"authenticated": false, "error": "invalid bearer token"})
                    };
                    Json(answer)
                }),
            )
            .route(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                post(move |Json(review): Json<Value>| async move {
                    a.fetch_add(1, Ordering::SeqCst);
                    let spec = &review["spec"];
                    let attributes = &spec["resourceAttributes"];
                    let allowed = spec["user"] == "alice"
                        && spec["groups"] == json!(["team"])
                        && attributes["group"] == "kubetrain.dev"
                        && attributes["resource"] == "trainingruns"
                        && attributes["verb"] == "get"
                        && attributes["namespace"] == "ml";
                    let mut answer = review.clone();
                    answer["status"] = json!({"allowed": allowed});
                    Json(answer)
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        (client, tokens, accesses)
    }

    fn access(verb: &'static str, namespace: &str) -> Access {
        Access {
            verb,
            resource: "trainingruns",
            namespace: namespace.to_owned(),
            name: Some("churn".to_owned()),
        }
    }

    #[tokio::test]
    async fn allowed_denied_and_unknown_tokens_with_answers_cached_per_token_and_access() {
        let (client, tokens, accesses) = api_server().await;
        let auth = KubeAuth::new(client);
        let caller = auth
            .authorize(Some("good"), &access("get", "ml"))
            .await
            .unwrap();
        assert_eq!(caller.user, "alice");
        assert_eq!(caller.groups, ["team"]);
        match auth.authorize(Some("good"), &access("create", "ml")).await {
            Err(AuthError::Forbidden { user, access }) => {
                assert_eq!(user, "alice");
                assert_eq!(access.verb, "create");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            auth.authorize(Some("bad"), &access("get", "ml")).await,
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(matches!(
            auth.authorize(None, &access("get", "ml")).await,
            Err(AuthError::Unauthenticated(_))
        ));
        assert_eq!(tokens.load(Ordering::SeqCst), 2, "one review per token");
        assert_eq!(accesses.load(Ordering::SeqCst), 2, "one review per access");

        // Within the TTL nothing is asked again, for allowed, denied and unknown alike.
        for _ in 0..5 {
            auth.authorize(Some("good"), &access("get", "ml"))
                .await
                .unwrap();
            assert!(
                auth.authorize(Some("good"), &access("create", "ml"))
                    .await
                    .is_err()
            );
            assert!(
                auth.authorize(Some("bad"), &access("get", "ml"))
                    .await
                    .is_err()
            );
        }
        assert_eq!(tokens.load(Ordering::SeqCst), 2);
        assert_eq!(accesses.load(Ordering::SeqCst), 2);

        // With no TTL every call is reviewed.
        let (client, tokens, accesses) = api_server().await;
        let uncached = KubeAuth::with_ttl(client, Duration::ZERO);
        for _ in 0..3 {
            uncached
                .authorize(Some("good"), &access("get", "ml"))
                .await
                .unwrap();
        }
        assert_eq!(tokens.load(Ordering::SeqCst), 3);
        assert_eq!(accesses.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_unreachable_api_server_is_unavailable_and_not_cached() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let auth = KubeAuth::new(Client::try_from(config).unwrap());
        for _ in 0..2 {
            assert!(matches!(
                auth.authorize(Some("good"), &access("get", "ml")).await,
                Err(AuthError::Unavailable(_))
            ));
        }
        assert_eq!(
            auth.users.len(),
            0,
            "failures to reach the API server are not cached"
        );
    }
}
