//! What exactly an input file was: the identity recorded in the summary and the dataset cache.

use serde::{Deserialize, Serialize};

/// Identity of an input file: what exactly was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fingerprint {
    /// The URI as given.
    pub uri: String,
    /// Data rows (header excluded).
    pub rows: u64,
    /// Bytes read.
    pub bytes: u64,
    /// SHA-256 of the bytes read, hex.
    pub sha256: String,
}
