//! A container's environment as kubelet computes it: `env` (values, `$(VAR)` references and
//! `valueFrom` secret, config map and field references) and `envFrom`.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Container, ObjectFieldSelector, Pod, Secret};
use kube::{Api, Client};

/// Variables of one container, in definition order (later definitions override earlier ones).
pub async fn resolve(
    client: &Client,
    pod: &Pod,
    container: &Container,
) -> Result<Vec<(String, String)>> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut vars: Vec<(String, String)> = Vec::new();
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or("");
        if let Some(cm) = &source.config_map_ref {
            let optional = cm.optional.unwrap_or(false);
            if let Some(map) = config_map(client, namespace, &cm.name, optional).await? {
                for (k, v) in map.data.unwrap_or_default() {
                    vars.push((format!("{prefix}{k}"), v));
                }
            }
        }
        if let Some(s) = &source.secret_ref {
            let optional = s.optional.unwrap_or(false);
            if let Some(secret) = secret(client, namespace, &s.name, optional).await? {
                for (k, v) in secret.data.unwrap_or_default() {
                    vars.push((format!("{prefix}{k}"), utf8(v.0, &s.name, &k)?));
                }
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => {
                let known: BTreeMap<&str, &str> =
                    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                Some(expand(var.value.as_deref().unwrap_or(""), &known))
            }
            Some(from) => {
                if let Some(r) = &from.secret_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match secret(client, namespace, &r.name, optional).await? {
                        Some(s) => match s.data.unwrap_or_default().remove(&r.key) {
                            Some(v) => Some(utf8(v.0, &r.name, &r.key)?),
                            None if optional => None,
                            None => bail!("secret {namespace}/{} has no key {:?}", r.name, r.key),
                        },
                        None => None,
                    }
                } else if let Some(r) = &from.config_map_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match config_map(client, namespace, &r.name, optional).await? {
                        Some(cm) => match cm.data.unwrap_or_default().remove(&r.key) {
                            Some(v) => Some(v),
                            None if optional => None,
                            None => {
                                bail!("config map {namespace}/{} has no key {:?}", r.name, r.key)
                            }
                        },
                        None => None,
                    }
                } else if let Some(field) = &from.field_ref {
                    Some(field_value(pod, field)?)
                } else {
                    bail!(
                        "env {:?}: only secretKeyRef, configMapKeyRef and fieldRef are supported by the process node",
                        var.name
                    )
                }
            }
        };
        if let Some(value) = value {
            vars.push((var.name.clone(), value));
        }
    }
    Ok(vars)
}

/// Kubelet's `$(VAR)` expansion: known references are replaced, unknown ones kept, `$$` escapes.
pub fn expand(input: &str, vars: &BTreeMap<&str, &str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match vars.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn field_value(pod: &Pod, field: &ObjectFieldSelector) -> Result<String> {
    let meta = &pod.metadata;
    let path = field.field_path.as_str();
    let from_map = |map: &Option<BTreeMap<String, String>>, prefix: &str| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.as_ref()?.get(key).cloned().unwrap_or_default())
    };
    let value = match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone()),
        "status.podIP" | "status.hostIP" => Some("127.0.0.1".to_owned()),
        _ => from_map(&meta.labels, "metadata.labels['")
            .or_else(|| from_map(&meta.annotations, "metadata.annotations['")),
    };
    value.with_context(|| format!("fieldRef {path:?} is not supported by the process node"))
}

async fn secret(client: &Client, ns: &str, name: &str, optional: bool) -> Result<Option<Secret>> {
    let found = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .with_context(|| format!("reading secret {ns}/{name}"))?;
    if found.is_none() && !optional {
        bail!("secret {ns}/{name} not found");
    }
    Ok(found)
}

async fn config_map(
    client: &Client,
    ns: &str,
    name: &str,
    optional: bool,
) -> Result<Option<ConfigMap>> {
    let found = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .with_context(|| format!("reading config map {ns}/{name}"))?;
    if found.is_none() && !optional {
        bail!("config map {ns}/{name} not found");
    }
    Ok(found)
}

fn utf8(bytes: Vec<u8>, secret: &str, key: &str) -> Result<String> {
    String::from_utf8(bytes).with_context(|| format!("secret {secret} key {key:?} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn expands_known_references_and_keeps_the_rest() {
        let vars = BTreeMap::from([("A", "1"), ("B", "two")]);
        assert_eq!(expand("$(A)-$(B)", &vars), "1-two");
        assert_eq!(expand("$(C) $$(A) $x $", &vars), "$(C) $(A) $x $");
        assert_eq!(expand("$(A", &vars), "$(A");
    }

    #[test]
    fn field_refs_cover_identity_and_labels() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "x"}},
            "spec": {"nodeName": "n", "containers": []}
        }))
        .unwrap();
        let field = |path: &str| ObjectFieldSelector {
            field_path: path.to_owned(),
            api_version: None,
        };
        assert_eq!(field_value(&pod, &field("metadata.name")).unwrap(), "p");
        assert_eq!(
            field_value(&pod, &field("metadata.namespace")).unwrap(),
            "ns"
        );
        assert_eq!(field_value(&pod, &field("spec.nodeName")).unwrap(), "n");
        assert_eq!(
            field_value(&pod, &field("metadata.labels['app']")).unwrap(),
            "x"
        );
        assert!(field_value(&pod, &field("status.phase")).is_err());
    }
}
