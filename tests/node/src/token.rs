//! The pod's service-account credentials: a token from the TokenRequest API, bound to the pod,
//! written with a kubeconfig that points at the API server, so the process gets exactly the
//! in-cluster RBAC of its service account.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};

/// Token lifetime requested; the pod task refreshes the token well before it expires.
pub const TOKEN_SECONDS: i64 = 3600;

/// Where the API server is and which CA signs it, for the pods' kubeconfigs.
#[derive(Debug, Clone)]
pub struct ApiServer {
    pub url: String,
    pub ca_file: Option<PathBuf>,
}

impl ApiServer {
    /// `host` and `port` for `KUBERNETES_SERVICE_HOST` / `KUBERNETES_SERVICE_PORT`.
    pub fn host_port(&self) -> (String, String) {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), port.to_owned()),
            None => (authority.to_owned(), "443".to_owned()),
        }
    }
}

/// Requests a token for the pod's service account and (re)writes `token` in `dir`. Returns the
/// kubeconfig path, written on first use; it reads the token through `tokenFile`, so refreshed
/// tokens are picked up by clients that re-read it (client-go and kube-rs do).
pub async fn write_credentials(
    client: &Client,
    api: &ApiServer,
    pod: &Pod,
    dir: &Path,
) -> Result<PathBuf> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.as_deref())
        .unwrap_or("default");
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(name.to_owned()),
                uid: pod.metadata.uid.clone(),
            }),
            expiration_seconds: Some(TOKEN_SECONDS),
        }),
        ..TokenRequest::default()
    };
    let issued = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .with_context(|| format!("requesting a token for service account {namespace}/{account}"))?;
    let token = issued
        .status
        .and_then(|s| s.token)
        .context("the TokenRequest came back without a token")?;
    let token_file = dir.join("token");
    write_private(&token_file, &token)?;
    let kubeconfig = dir.join("kubeconfig");
    if !kubeconfig.exists() {
        write_private(&kubeconfig, &render_kubeconfig(api, namespace, &token_file))?;
    }
    Ok(kubeconfig)
}

/// How long to wait before refreshing a token of `TOKEN_SECONDS` (kubelet uses 80%).
pub fn refresh_after() -> Duration {
    Duration::from_secs(u64::try_from(TOKEN_SECONDS * 4 / 5).unwrap_or(2880))
}

fn render_kubeconfig(api: &ApiServer, namespace: &str, token_file: &Path) -> String {
    let ca = api
        .ca_file
        .as_ref()
        .map(|ca| format!("    certificate-authority: {}\n", ca.display()))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: cluster\n  cluster:\n    server: {url}\n{ca}\
         contexts:\n- name: pod\n  context:\n    cluster: cluster\n    user: pod\n    namespace: {namespace}\n\
         current-context: pod\nusers:\n- name: pod\n  user:\n    tokenFile: {token}\n",
        url = api.url,
        token = token_file.display(),
    )
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn service_host_and_port_come_from_the_url() {
        let api = ApiServer {
            url: "https://127.0.0.1:6443".into(),
            ca_file: None,
        };
        assert_eq!(api.host_port(), ("127.0.0.1".into(), "6443".into()));
    }

    #[test]
    fn kubeconfig_reads_the_token_file_and_parses() {
        let api = ApiServer {
            url: "https://127.0.0.1:6443".into(),
            ca_file: Some("/pki/ca.crt".into()),
        };
        let text = render_kubeconfig(&api, "team-a", Path::new("/pods/p/token"));
        let parsed = kube::config::Kubeconfig::from_yaml(&text).unwrap();
        let user = parsed.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(user.token_file.as_deref(), Some("/pods/p/token"));
        let context = parsed.contexts[0].context.as_ref().unwrap();
        assert_eq!(context.namespace.as_deref(), Some("team-a"));
    }
}
