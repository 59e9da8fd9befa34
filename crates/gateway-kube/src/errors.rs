//! What the API server answered, as the gateway's [`BackendError`].
//!
//! kube 5 keeps the whole `Status` of a failed call in [`kube::Error::Api`], including
//! `details.causes`: a 422 Invalid carries one cause per offending field, named by its JSON
//! path (`spec.dataset.validationFraction`), which become [`FieldError`]s unchanged.

use kube::core::Status;
use kubetrain_gateway::{BackendError, FieldError};

/// What the call was about, to name it in errors.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The namespace of the call.
    pub namespace: &'a str,
    /// The run's name (empty for a list).
    pub name: &'a str,
    /// A create: 404 then means the namespace does not exist.
    pub creating: bool,
}

/// Maps a failed kube call to the error the routes answer with.
pub fn from_kube(error: kube::Error, target: Target<'_>) -> BackendError {
    match error {
        kube::Error::Api(status) => from_status(&status, target),
        // Connection refused, reset, DNS, TLS handshakes and timeouts: the API server cannot
        // be reached now; a retry may succeed.
        kube::Error::HyperError(error) => {
            BackendError::Unavailable(format!("the Kubernetes API server is unreachable: {error}"))
        }
        kube::Error::Service(error) => {
            BackendError::Unavailable(format!("the Kubernetes API server is unreachable: {error}"))
        }
        other => BackendError::Internal(format!("Kubernetes API call failed: {other}")),
    }
}

/// Maps an API server `Status` (the body of every error response).
pub fn from_status(status: &Status, target: Target<'_>) -> BackendError {
    let causes = status
        .details
        .as_ref()
        .map(|d| d.causes.as_slice())
        .unwrap_or_default();
    match (status.code, status.reason.as_str()) {
        (422, _) | (_, "Invalid") => {
            let mut fields: Vec<FieldError> = causes
                .iter()
                .map(|cause| FieldError {
                    field: cause.field.clone(),
                    message: cause.message.clone(),
                })
                .collect();
            if fields.is_empty() {
                fields.push(FieldError {
                    field: String::new(),
                    message: status.message.clone(),
                });
            }
            BackendError::Invalid(fields)
        }
        (409, "AlreadyExists") | (_, "AlreadyExists") => BackendError::AlreadyExists {
            namespace: target.namespace.to_owned(),
            name: status
                .details
                .as_ref()
                .map(|d| d.name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| target.name.to_owned()),
        },
        (409, _) => BackendError::Conflict(status.message.clone()),
        (404, _) if target.creating => BackendError::Invalid(vec![FieldError {
            field: "metadata.namespace".to_owned(),
            message: status.message.clone(),
        }]),
        (404, _) => BackendError::NotFound {
            namespace: target.namespace.to_owned(),
            name: target.name.to_owned(),
        },
        (400, _) => BackendError::BadRequest(status.message.clone()),
        // Overloaded, timed out, or unavailable behind the API server: retry later. (A 500 is
        // the API server's own failure, not an outage: Internal.)
        (429 | 503 | 504, _) => BackendError::Unavailable(format!(
            "the Kubernetes API server cannot serve the request now: {}",
            status.message
        )),
        (code, reason) => BackendError::Internal(format!(
            "the Kubernetes API server answered {code} {reason}: {}",
            status.message
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const CREATE: Target<'static> = Target {
        namespace: "ml",
        name: "churn",
        creating: true,
    };
    const GET: Target<'static> = Target {
        namespace: "ml",
        name: "churn",
        creating: false,
    };

    fn status(json: &str) -> Status {
        serde_json::from_str(json).unwrap()
    }

    /// Verbatim from kube-apiserver 1.36 (the test environment) for a run with
    /// `backoffLimit: -1` and `validationFraction: 1.5`.
    const INVALID: &str = r#"{
  "kind": "Status",
  "apiVersion": "v1",
  "metadata": {},
  "status": "Failure",
  "message": "TrainingRun.kubetrain.dev \"churn\" is invalid: [spec.backoffLimit: Invalid value: -1: spec.backoffLimit in body should be greater than or equal to 0, spec.dataset.validationFraction: Invalid value: 1.5: must be in [0, 1): at least one row must be left to train on]",
  "reason": "Invalid",
  "details": {
    "name": "churn",
    "group": "kubetrain.dev",
    "kind": "TrainingRun",
    "causes": [
      {
        "reason": "FieldValueInvalid",
        "message": "Invalid value: -1: spec.backoffLimit in body should be greater than or equal to 0",
        "field": "spec.backoffLimit"
      },
      {
        "reason": "FieldValueInvalid",
        "message": "Invalid value: 1.5: must be in [0, 1): at least one row must be left to train on",
        "field": "spec.dataset.validationFraction"
      }
    ]
  },
  "code": 422
}"#;

    #[test]
    fn invalid_keeps_every_field_the_api_server_named() {
        match from_status(&status(INVALID), CREATE) {
            BackendError::Invalid(fields) => {
                assert_eq!(fields.len(), 2);
                assert_eq!(fields[0].field, "spec.backoffLimit");
                assert!(fields[0].message.contains("greater than or equal to 0"));
                assert_eq!(fields[1].field, "spec.dataset.validationFraction");
                assert!(fields[1].message.contains("must be in [0, 1)"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_without_causes_keeps_the_message() {
        let s = status(
            r#"{"kind":"Status","status":"Failure","message":"bad name","reason":"Invalid","code":422}"#,
        );
        match from_status(&s, CREATE) {
            BackendError::Invalid(fields) => assert_eq!(fields[0].message, "bad name"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn conflicts_not_found_and_outages_map_to_their_statuses() {
        let exists = status(
            r#"{"kind":"Status","status":"Failure","message":"trainingruns.kubetrain.dev \"churn\" already exists","reason":"AlreadyExists","details":{"name":"churn","group":"kubetrain.dev","kind":"trainingruns"},"code":409}"#,
        );
        assert!(matches!(
            from_status(&exists, CREATE),
            BackendError::AlreadyExists { ref name, .. } if name == "churn"
        ));
        let conflict = status(
            r#"{"kind":"Status","status":"Failure","message":"the object has been modified","reason":"Conflict","code":409}"#,
        );
        assert!(matches!(
            from_status(&conflict, GET),
            BackendError::Conflict(_)
        ));
        let missing = status(
            r#"{"kind":"Status","status":"Failure","message":"trainingruns.kubetrain.dev \"churn\" not found","reason":"NotFound","details":{"name":"churn"},"code":404}"#,
        );
        assert!(matches!(
            from_status(&missing, GET),
            BackendError::NotFound { ref namespace, ref name } if namespace == "ml" && name == "churn"
        ));
        let no_namespace = status(
            r#"{"kind":"Status","status":"Failure","message":"namespaces \"ml\" not found","reason":"NotFound","details":{"name":"ml","kind":"namespaces"},"code":404}"#,
        );
        match from_status(&no_namespace, CREATE) {
            BackendError::Invalid(fields) => {
                assert_eq!(fields[0].field, "metadata.namespace");
                assert!(fields[0].message.contains("namespaces \"ml\" not found"));
            }
            other => panic!("{other:?}"),
        }
        for code in [429, 503, 504] {
            let s = status(&format!(
                r#"{{"kind":"Status","status":"Failure","message":"etcd timeout","code":{code}}}"#
            ));
            assert!(
                matches!(from_status(&s, GET), BackendError::Unavailable(_)),
                "{code}"
            );
        }
        let failed = status(
            r#"{"kind":"Status","status":"Failure","message":"resourceVersion should not be set on objects to be created","reason":"InternalError","code":500}"#,
        );
        assert!(matches!(
            from_status(&failed, CREATE),
            BackendError::Internal(_)
        ));
        let forbidden = status(
            r#"{"kind":"Status","status":"Failure","message":"forbidden","reason":"Forbidden","code":403}"#,
        );
        assert!(matches!(
            from_status(&forbidden, GET),
            BackendError::Internal(_)
        ));
    }

    #[tokio::test]
    async fn a_refused_connection_is_unavailable() {
        // kube links ring, object_store (elsewhere in the workspace) aws-lc-rs: pick one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Nothing listens on port 1 of the loopback address.
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let api = kube::Api::<kubetrain_api::TrainingRun>::namespaced(client, "ml");
        let error = api.get("churn").await.unwrap_err();
        assert!(
            matches!(from_kube(error, GET), BackendError::Unavailable(_)),
            "connection refused must be 503"
        );
    }
}
