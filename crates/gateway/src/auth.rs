//! Authorizers that need no cluster: [`StaticTokens`] (a file of tokens and the namespaces
//! each may use) and [`NoAuth`] (everyone may do everything; loopback only, see
//! [`check_no_auth_address`]).

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::Deserialize;

use crate::backend::{Access, AuthError, Authorizer, Caller};

/// Everyone may do everything, as user `anonymous`. Only for a gateway bound to loopback.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAuth;

#[async_trait::async_trait]
impl Authorizer for NoAuth {
    async fn authorize(&self, _token: Option<&str>, _access: &Access) -> Result<Caller, AuthError> {
        Ok(Caller {
            user: "anonymous".to_owned(),
            groups: Vec::new(),
        })
    }
}

/// Refuse `--auth none` unless `listen` is a loopback address (127.0.0.0/8 or ::1).
///
/// # Errors
/// A message for the operator naming the address and what to do instead.
pub fn check_no_auth_address(listen: SocketAddr) -> Result<(), String> {
    if listen.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "--auth none is refused on {listen}: without authentication the gateway may only \
             listen on loopback (e.g. 127.0.0.1:8080); use --auth static --tokens FILE or \
             --auth kubernetes"
        ))
    }
}

/// The token file of [`StaticTokens`]:
///
/// ```yaml
/// tokens:
///   - token: s3cr3t-alice
///     user: alice
///     namespaces: [ml, research]
///   - token: s3cr3t-admin
///     user: admin
///     namespaces: ["*"]          # every namespace
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    /// One entry per token.
    pub tokens: Vec<TokenEntry>,
}

/// One token of a [`TokenFile`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// The bearer token.
    pub token: String,
    /// Who the token belongs to (logged and named in 403 answers).
    pub user: String,
    /// Namespaces the token may use for every verb; `"*"` means all.
    pub namespaces: Vec<String>,
}

/// Why a token file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file cannot be read.
    #[error("cannot read the token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// The file is not a valid token file.
    #[error("the token file {path} is invalid: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Bearer tokens from a file, each allowed every verb in its namespaces. An unknown or missing
/// token is 401, a known token outside its namespaces 403.
#[derive(Debug, Clone)]
pub struct StaticTokens {
    by_token: HashMap<String, TokenEntry>,
}

impl StaticTokens {
    /// Read a YAML (or JSON) [`TokenFile`] from `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|message| TokenFileError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parse a [`TokenFile`] from YAML text.
    ///
    /// # Errors
    /// Unparsable text, an empty token or user, a token listed twice, or a token with no
    /// namespaces.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let file: TokenFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        Self::new(file.tokens)
    }

    /// Build from entries, checking them as [`StaticTokens::from_yaml`] does.
    pub fn new(entries: Vec<TokenEntry>) -> Result<Self, String> {
        let mut by_token = HashMap::new();
        for (i, entry) in entries.into_iter().enumerate() {
            if entry.token.trim().is_empty() {
                return Err(format!("tokens[{i}].token: must not be empty"));
            }
            if entry.user.trim().is_empty() {
                return Err(format!("tokens[{i}].user: must not be empty"));
            }
            if entry.namespaces.is_empty() {
                return Err(format!(
                    "tokens[{i}].namespaces: list at least one namespace, or \"*\" for all"
                ));
            }
            if by_token.contains_key(&entry.token) {
                return Err(format!("tokens[{i}].token: the same token is listed twice"));
            }
            by_token.insert(entry.token.clone(), entry);
        }
        Ok(StaticTokens { by_token })
    }
}

#[async_trait::async_trait]
impl Authorizer for StaticTokens {
    async fn authorize(&self, token: Option<&str>, access: &Access) -> Result<Caller, AuthError> {
        let Some(token) = token else {
            return Err(AuthError::Unauthenticated(
                "no bearer token: send Authorization: Bearer <token>".to_owned(),
            ));
        };
        let Some(entry) = self.by_token.get(token) else {
            return Err(AuthError::Unauthenticated(
                "the bearer token is not valid".to_owned(),
            ));
        };
        let allowed = entry
            .namespaces
            .iter()
            .any(|ns| ns == "*" || *ns == access.namespace);
        if !allowed {
            return Err(AuthError::Forbidden {
                user: entry.user.clone(),
                access: access.clone(),
            });
        }
        Ok(Caller {
            user: entry.user.clone(),
            groups: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn access(namespace: &str) -> Access {
        Access {
            verb: "get",
            resource: "trainingruns",
            namespace: namespace.to_owned(),
            name: None,
        }
    }

    #[tokio::test]
    async fn static_tokens_allow_their_namespaces_only() {
        let tokens = StaticTokens::from_yaml(
            "tokens:\n- {token: a, user: alice, namespaces: [ml]}\n- {token: r, user: root, namespaces: ['*']}\n",
        )
        .unwrap();
        assert_eq!(
            tokens
                .authorize(Some("a"), &access("ml"))
                .await
                .unwrap()
                .user,
            "alice"
        );
        assert!(matches!(
            tokens.authorize(Some("a"), &access("other")).await,
            Err(AuthError::Forbidden { .. })
        ));
        assert!(tokens.authorize(Some("r"), &access("other")).await.is_ok());
        assert!(matches!(
            tokens.authorize(Some("x"), &access("ml")).await,
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(matches!(
            tokens.authorize(None, &access("ml")).await,
            Err(AuthError::Unauthenticated(_))
        ));
    }

    #[test]
    fn bad_token_files_name_the_entry() {
        let error = StaticTokens::from_yaml("tokens:\n- {token: a, user: u, namespaces: []}\n")
            .unwrap_err();
        assert!(error.contains("tokens[0].namespaces"), "{error}");
        let error = StaticTokens::from_yaml(
            "tokens:\n- {token: a, user: u, namespaces: [x]}\n- {token: a, user: v, namespaces: [y]}\n",
        )
        .unwrap_err();
        assert!(error.contains("tokens[1].token"), "{error}");
        assert!(StaticTokens::from_yaml("tokens: 3").is_err());
    }

    #[test]
    fn no_auth_only_on_loopback() {
        assert!(check_no_auth_address("127.0.0.1:8080".parse().unwrap()).is_ok());
        assert!(check_no_auth_address("[::1]:8080".parse().unwrap()).is_ok());
        let error = check_no_auth_address("0.0.0.0:8080".parse().unwrap()).unwrap_err();
        assert!(error.contains("0.0.0.0:8080"), "{error}");
    }
}
