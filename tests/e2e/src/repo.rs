//! Files of this checkout the tests use as a user would: the chart and the samples, with the
//! environment's bucket and credentials in place of their placeholders.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

/// The bucket the samples name; the tests point them at the environment's bucket.
pub const SAMPLE_BUCKET: &str = "s3://kubetrain-samples/";

/// The repository's root directory.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Helm chart's directory, `charts/kubetrain`.
pub fn chart() -> PathBuf {
    repo().join("charts/kubetrain")
}

/// `path` as a command-line argument.
///
/// # Panics
/// If it is not UTF-8 (the repository's paths are).
#[allow(clippy::expect_used)] // a checkout with a non-UTF-8 path cannot run these tests at all
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("repository paths are UTF-8")
}

/// The sample `deploy/examples/{name}` with its bucket replaced by `s3://{bucket}/{prefix}/`.
///
/// # Errors
/// If the file cannot be read or names no [`SAMPLE_BUCKET`].
pub fn sample(name: &str, bucket: &str, prefix: &str) -> Result<String> {
    let path = repo().join("deploy/examples").join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        text.contains(SAMPLE_BUCKET),
        "{name} names no {SAMPLE_BUCKET}"
    );
    Ok(text.replace(SAMPLE_BUCKET, &format!("s3://{bucket}/{prefix}/")))
}

/// The storage Secret sample with the environment's credentials (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`) in place of its placeholders.
///
/// # Errors
/// If the file cannot be read, lacks a placeholder, or a variable is unset.
pub fn storage_secret_sample() -> Result<String> {
    let text = std::fs::read_to_string(repo().join("deploy/examples/storage-secret.yaml"))?;
    ensure!(
        text.contains("REPLACE_WITH_ACCESS_KEY_ID")
            && text.contains("REPLACE_WITH_SECRET_ACCESS_KEY")
    );
    Ok(text
        .replace(
            "REPLACE_WITH_ACCESS_KEY_ID",
            &std::env::var("AWS_ACCESS_KEY_ID")?,
        )
        .replace(
            "REPLACE_WITH_SECRET_ACCESS_KEY",
            &std::env::var("AWS_SECRET_ACCESS_KEY")?,
        ))
}
