//! The client side of the kubetrain REST API, as `kubetrain submit`, `get`, `list` and
//! `cancel` use it against any gateway (`kubetrain gateway` on a cluster or `kubetrain local`).
//!
//! - [`manifest`]: a TrainingRun from a YAML or JSON file, or from command-line flags.
//! - [`http`]: the REST calls ([`Client`]), with the gateway's JSON errors as [`ClientError`].
//! - [`events`]: the run's Server-Sent Events, followed to a terminal phase across reconnects.
//! - [`progress`]: what a run's status says about its progress, as a bar or as plain lines.
//! - [`render`]: tables like kubectl's, and the summary of a finished run.

pub mod error;
pub mod events;
pub mod http;
pub mod manifest;
pub mod progress;
pub mod render;

pub use error::{ApiError, Cause, ClientError};
pub use http::{Client, ListFilter};
