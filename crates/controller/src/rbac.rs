//! The trainer's identity in a namespace (pure builders): a ServiceAccount allowed to patch
//! `trainingruns/status` and nothing more.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::ObjectMeta;

use crate::job::TRAINER_SERVICE_ACCOUNT;

fn meta(namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(TRAINER_SERVICE_ACCOUNT.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "kubetrain".to_owned(),
            ),
            (
                "app.kubernetes.io/component".to_owned(),
                "trainer".to_owned(),
            ),
        ])),
        ..ObjectMeta::default()
    }
}

/// The trainer's ServiceAccount in `namespace`.
pub fn service_account(namespace: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(namespace),
        ..ServiceAccount::default()
    }
}

/// May patch the status of TrainingRuns in `namespace`; nothing else.
pub fn role(namespace: &str) -> Role {
    Role {
        metadata: meta(namespace),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![kubetrain_api::GROUP.to_owned()]),
            resources: Some(vec!["trainingruns/status".to_owned()]),
            verbs: vec!["patch".to_owned()],
            ..PolicyRule::default()
        }]),
    }
}

/// Binds [`role`] to [`service_account`].
pub fn role_binding(namespace: &str) -> RoleBinding {
    RoleBinding {
        metadata: meta(namespace),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Role".to_owned(),
            name: TRAINER_SERVICE_ACCOUNT.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: TRAINER_SERVICE_ACCOUNT.to_owned(),
            namespace: Some(namespace.to_owned()),
            ..Subject::default()
        }]),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn least_privilege() {
        let rules = role("ml").rules.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].resources.as_ref().unwrap(),
            &vec!["trainingruns/status".to_owned()]
        );
        assert_eq!(rules[0].verbs, vec!["patch".to_owned()]);
        let binding = role_binding("ml");
        assert_eq!(
            binding.subjects.unwrap()[0].namespace.as_deref(),
            Some("ml")
        );
        assert_eq!(
            service_account("ml").metadata.namespace.as_deref(),
            Some("ml")
        );
    }
}
