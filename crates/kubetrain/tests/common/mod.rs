//! Helpers shared by the binary's integration tests (each test file uses some of them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub mod server;

/// A dataset in `tests/data`, as an absolute path.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
        .canonicalize()
        .unwrap()
}

/// [`data`] as a command-line argument.
pub fn data_arg(name: &str) -> String {
    data(name).to_string_lossy().into_owned()
}

/// Process output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
