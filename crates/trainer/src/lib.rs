//! Training: read a CSV dataset from object storage, fit a model (logistic regression for
//! classification, penalised linear least squares for regression), write the model and a
//! summary back, and report progress while doing it.
//!
//! The entry points are [`train`] and [`predict`]; the modules are the concepts they are made
//! of. Nothing here knows about Kubernetes: progress leaves through [`ProgressSink`], failures
//! through [`TrainError`], whose [`ErrorClass`] maps to the exit codes in
//! `kubetrain_api::exit_code`.

pub mod blocking;
pub mod cache;
pub mod data;
pub mod error;
pub mod fingerprint;
pub mod history;
pub mod labels;
pub mod least_squares;
pub mod memory;
pub mod metrics;
pub mod pipeline;
pub mod progress;
pub mod solver;
pub mod split;
pub mod targets;
pub mod trees;

pub use error::{DataError, ErrorClass, TrainError};
pub use least_squares::LinearParams;
pub use pipeline::{
    AlgorithmConfig, PredictConfig, Predictions, TrainConfig, TrainSummary, Validation, predict,
    train,
};
pub use progress::{Iteration, ProgressSink};
pub use solver::{FitParams, SolverKind};
