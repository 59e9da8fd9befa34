//! `TrainingRun.spec.custom`: the user's own training program instead of a built-in
//! algorithm, and the contract (version [`CONTRACT_VERSION`]) it is run under.
//!
//! The program runs under `kubetrain exec -- COMMAND ARGS...`, which hands it the run's inputs
//! in `KUBETRAIN_*` variables (`invocation::custom_env`), relays the JSON lines it
//! prints ([`crate::report::ProgramEvent`]) into the run's status, uploads the files it writes
//! into `KUBETRAIN_MODEL_DIR` and maps its exit code ([`crate::exit_code`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::EnvVar;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The version of the contract between `kubetrain exec` and the program, in
/// `KUBETRAIN_CONTRACT`. A change that breaks programs written for it gets a new number.
pub const CONTRACT_VERSION: &str = "1";

/// The message of the rule that a run names a built-in algorithm or custom code.
pub const TRAINER_RULE: &str = "set exactly one of algorithm (a built-in trainer) or custom \
    (your own training program)";

/// The message of the rule that `spec.custom.env` leaves the contract's variables alone.
pub const RESERVED_ENV_RULE: &str = "names starting with KUBETRAIN_ are set by kubetrain (the \
    custom-code contract); pass your own settings in params or under another name";

/// Your own training program, run in your image. kubetrain's wrapper starts it with the run's
/// inputs in `KUBETRAIN_*` environment variables (`KUBETRAIN_DATA_FILE`, `KUBETRAIN_MODEL_DIR`,
/// `KUBETRAIN_PARAMS`, ...), puts the progress and metrics it prints as JSON lines into the
/// run's status, and uploads the files it writes into `KUBETRAIN_MODEL_DIR` to `output.uri`
/// after it exits 0. Exit 65 means bad input (no retry), 75 a transient failure; anything else
/// counts against `backoffLimit`. The image needs no change: the wrapper is copied into the Pod
/// by an init container.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CustomCode {
    /// Container image holding the program and everything it needs (e.g. Python and
    /// scikit-learn). Ignored by `kubetrain local`, which runs `command` on its own machine.
    #[schemars(length(min = 1, max = 512))]
    pub image: String,

    /// The program and its first arguments, as a container's `command`, e.g.
    /// `[python, /app/train.py]`. Required: the wrapper runs this instead of the image's
    /// entrypoint. `$(VAR)` references to the container's variables are expanded.
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 4096)))]
    pub command: Vec<String>,

    /// Arguments after `command`, as a container's `args`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 4096)))]
    pub args: Vec<String>,

    /// Extra environment variables of the program, as a container's `env` (`value`, or
    /// `valueFrom` a Secret or ConfigMap key). Names starting with `KUBETRAIN_` belong to the
    /// contract and are refused. `kubetrain local` takes literal values only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self.all(e, !e.name.startsWith('KUBETRAIN_'))").message(RESERVED_ENV_RULE))]
    pub env: Vec<EnvVar>,

    /// Parameters for the program, handed to it as one JSON object of strings in
    /// `KUBETRAIN_PARAMS` (e.g. `{"n_estimators": "200"}`); the program parses them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 128))]
    pub params: BTreeMap<String, String>,
}

impl CustomCode {
    /// `params` as the JSON object `KUBETRAIN_PARAMS` holds (`{}` when there are none).
    pub fn params_json(&self) -> String {
        serde_json::to_string(&self.params).unwrap_or_else(|_| "{}".to_owned())
    }
}
