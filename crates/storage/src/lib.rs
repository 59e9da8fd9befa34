//! Where data and models live: a URI turned into an `object_store` store plus a path.
//!
//! Accepted forms:
//! - `s3://bucket/key`: Amazon S3 or any S3-compatible server. Region, credentials and endpoint
//!   come from the standard environment variables (`AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
//!   `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`). Requests are path-style (`endpoint/bucket/key`),
//!   which every S3-compatible server accepts, unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`.
//! - `file:///absolute/path` and plain paths (relative to the working directory).
//!
//! # Caveats
//! Retries are bounded (3 retries, 30 s in all) so that an unreachable server surfaces as a
//! transient error quickly; the Job's `backoffLimit` is the outer retry loop.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig,
};

use kubetrain_api::ErrorClass;

/// Why a location cannot be used or its object cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URI cannot name an object (bad input).
    #[error("{field}: '{uri}' is not a valid location: {reason}")]
    InvalidLocation {
        /// The flag or spec field the URI came from.
        field: &'static str,
        /// The URI as given.
        uri: String,
        /// What is wrong and what would be valid.
        reason: String,
    },
    /// No object at the location (bad input).
    #[error("{uri} not found: check the path, bucket and key ({source})")]
    NotFound {
        /// The object's URI.
        uri: String,
        /// The store's answer.
        #[source]
        source: object_store::Error,
    },
    /// The store refused the credentials (bad input).
    #[error("{uri}: access denied; check the storage credentials ({source})")]
    AccessDenied {
        /// The object's URI.
        uri: String,
        /// The store's answer.
        #[source]
        source: object_store::Error,
    },
    /// Reading failed in a way that may pass on retry (transient).
    #[error("could not read {uri}: {source}")]
    Read {
        /// The object's URI.
        uri: String,
        /// The store's answer.
        #[source]
        source: object_store::Error,
    },
    /// Writing failed in a way that may pass on retry (transient).
    #[error("could not write {uri}: {source}")]
    Write {
        /// The object's URI.
        uri: String,
        /// The store's answer.
        #[source]
        source: object_store::Error,
    },
    /// The local side of a download or upload failed (disk full, permissions): transient, as
    /// another attempt may run where there is room.
    #[error("{action} {path}: {source}")]
    LocalFile {
        /// What was being done, e.g. `writing`.
        action: &'static str,
        /// The local file.
        path: String,
        /// The operating system's answer.
        #[source]
        source: std::io::Error,
    },
}

impl StorageError {
    /// Whether retrying can help: invalid, missing and forbidden are bad input, the rest
    /// transient.
    pub fn class(&self) -> ErrorClass {
        match self {
            StorageError::InvalidLocation { .. }
            | StorageError::NotFound { .. }
            | StorageError::AccessDenied { .. } => ErrorClass::BadInput,
            StorageError::Read { .. }
            | StorageError::Write { .. }
            | StorageError::LocalFile { .. } => ErrorClass::Transient,
        }
    }
}

/// A parsed location: which store, and which object in it.
#[derive(Debug, Clone)]
pub struct Location {
    uri: String,
    store: Arc<dyn ObjectStore>,
    path: Path,
}

impl Location {
    /// Parse `uri`; `field` names the flag or spec field it came from, for error messages.
    pub fn parse(field: &'static str, uri: &str) -> Result<Self, StorageError> {
        let invalid = |reason: String| StorageError::InvalidLocation {
            field,
            uri: uri.to_string(),
            reason,
        };
        if uri.trim().is_empty() {
            return Err(invalid(
                "it is empty; give a path, file:// or s3:// URI".into(),
            ));
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("no bucket name; expected s3://bucket/key".into()));
            }
            install_crypto_provider();
            let store = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(RetryConfig {
                    backoff: BackoffConfig::default(),
                    max_retries: 3,
                    retry_timeout: Duration::from_secs(30),
                })
                // A config key, not `with_client_options`, which would replace the client
                // settings read from the environment (AWS_ALLOW_HTTP among them).
                .with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                    "5s",
                )
                .build()
                .map_err(|e| invalid(format!("cannot configure S3 access: {e}")))?;
            let path = Path::parse(key.trim_matches('/'))
                .map_err(|e| invalid(format!("bad object key: {e}")))?;
            return Ok(Location {
                uri: uri.to_string(),
                store: Arc::new(store),
                path,
            });
        }
        let local = if let Some(rest) = uri.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(invalid(
                    "file:// URIs need an absolute path, e.g. file:///data/train.csv".into(),
                ));
            }
            std::path::PathBuf::from(rest)
        } else if uri.contains("://") {
            return Err(invalid(
                "unsupported scheme; use s3://, file:// or a plain path".into(),
            ));
        } else {
            std::path::absolute(uri)
                .map_err(|e| invalid(format!("cannot make the path absolute: {e}")))?
        };
        let path = Path::from_absolute_path(normalize(&local))
            .map_err(|e| invalid(format!("bad local path: {e}")))?;
        Ok(Location {
            uri: uri.to_string(),
            store: Arc::new(LocalFileSystem::new()),
            path,
        })
    }

    /// The URI as given.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The store holding the object (for streaming reads and multipart writes).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The object's path in [`Location::store`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Classify a storage error about this location as [`Location::read`] does: missing
    /// objects and denied access are bad input, anything else is a transient read error.
    pub fn read_error(&self, error: object_store::Error) -> StorageError {
        self.classify(error, |uri, source| StorageError::Read { uri, source })
    }

    /// The object `name` under this location taken as a prefix ("directory"); a `/` in
    /// `name` separates path segments (`tokenizer/vocab.txt`), as in the URI.
    pub fn child(&self, name: &str) -> Location {
        Location {
            uri: format!("{}/{name}", self.uri.trim_end_matches('/')),
            store: Arc::clone(&self.store),
            path: name
                .split('/')
                .filter(|segment| !segment.is_empty())
                .fold(self.path.clone(), |path, segment| path.join(segment)),
        }
    }

    /// Read the whole object.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] / [`StorageError::AccessDenied`] (bad input) or
    /// [`StorageError::Read`] (transient).
    pub async fn read(&self) -> Result<Bytes, StorageError> {
        Ok(self.read_with_meta().await?.0)
    }

    /// Read the whole object, with what the store says about it (size, modification time,
    /// ETag) when it was read.
    ///
    /// # Errors
    /// As [`Location::read`].
    pub async fn read_with_meta(&self) -> Result<(Bytes, ObjectMeta), StorageError> {
        let result = match self.store.get(&self.path).await {
            Ok(result) => {
                let meta = result.meta.clone();
                result.bytes().await.map(|bytes| (bytes, meta))
            }
            Err(e) => Err(e),
        };
        result.map_err(|e| self.classify(e, |uri, source| StorageError::Read { uri, source }))
    }

    /// What the store says about the object, without reading it.
    ///
    /// # Errors
    /// As [`Location::read`].
    pub async fn head(&self) -> Result<ObjectMeta, StorageError> {
        self.store
            .head(&self.path)
            .await
            .map_err(|e| self.classify(e, |uri, source| StorageError::Read { uri, source }))
    }

    /// Write the whole object (atomically on both stores: S3 PUT, local temp file + rename).
    pub async fn write(&self, bytes: Bytes) -> Result<(), StorageError> {
        self.store
            .put(&self.path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.classify(e, |uri, source| StorageError::Write { uri, source }))
    }

    /// Copy the object into the local file `file` (created or truncated) chunk by chunk, so
    /// objects larger than memory download too. Returns the bytes copied.
    ///
    /// # Errors
    /// As [`Location::read`]; [`StorageError::LocalFile`] when `file` cannot be written.
    pub async fn download_to(&self, file: &std::path::Path) -> Result<u64, StorageError> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        let local = |action, source| StorageError::LocalFile {
            action,
            path: file.display().to_string(),
            source,
        };
        let read = |e| self.classify(e, |uri, source| StorageError::Read { uri, source });
        let mut stream = self
            .store
            .get(&self.path)
            .await
            .map_err(read)?
            .into_stream();
        let mut out = tokio::fs::File::create(file)
            .await
            .map_err(|e| local("creating", e))?;
        let mut copied = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(read)?;
            out.write_all(&chunk)
                .await
                .map_err(|e| local("writing", e))?;
            copied += chunk.len() as u64;
        }
        out.flush().await.map_err(|e| local("writing", e))?;
        Ok(copied)
    }

    /// Store the local file `file` as this object, streamed (multipart uploads for large
    /// files on S3); the object appears only once the whole file is stored. Returns the bytes
    /// stored.
    ///
    /// # Errors
    /// As [`Location::write`]; [`StorageError::LocalFile`] when `file` cannot be read.
    pub async fn upload_from(&self, file: &std::path::Path) -> Result<u64, StorageError> {
        use tokio::io::AsyncWriteExt;
        let mut input =
            tokio::fs::File::open(file)
                .await
                .map_err(|source| StorageError::LocalFile {
                    action: "reading",
                    path: file.display().to_string(),
                    source,
                })?;
        let mut writer =
            object_store::buffered::BufWriter::new(Arc::clone(&self.store), self.path.clone());
        let copied = match tokio::io::copy(&mut input, &mut writer).await {
            Ok(copied) => copied,
            Err(error) => {
                let _ = writer.abort().await;
                return Err(self.io_write_error(file, error));
            }
        };
        writer
            .shutdown()
            .await
            .map_err(|error| self.io_write_error(file, error))?;
        Ok(copied)
    }

    /// An I/O error of an upload: the store's error when it is one, else the local file's.
    fn io_write_error(&self, file: &std::path::Path, error: std::io::Error) -> StorageError {
        let local = |source| StorageError::LocalFile {
            action: "reading",
            path: file.display().to_string(),
            source,
        };
        if error.get_ref().is_none() {
            return local(error);
        }
        match error
            .into_inner()
            .map(|inner| inner.downcast::<object_store::Error>())
        {
            Some(Ok(store)) => {
                self.classify(*store, |uri, source| StorageError::Write { uri, source })
            }
            Some(Err(other)) => local(std::io::Error::other(other)),
            None => local(std::io::Error::other("unknown I/O error")),
        }
    }

    /// Delete the object; a missing object is not an error.
    pub async fn delete(&self) -> Result<(), StorageError> {
        match self.store.delete(&self.path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.classify(e, |uri, source| StorageError::Write { uri, source })),
        }
    }

    fn classify(
        &self,
        error: object_store::Error,
        otherwise: impl FnOnce(String, object_store::Error) -> StorageError,
    ) -> StorageError {
        let uri = self.uri.clone();
        match error {
            e @ object_store::Error::NotFound { .. } => StorageError::NotFound { uri, source: e },
            e @ (object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }) => {
                StorageError::AccessDenied { uri, source: e }
            }
            e => otherwise(uri, e),
        }
    }
}

/// Give rustls a process-wide crypto provider. The dependency tree enables both `ring` and
/// `aws-lc-rs`, and with two candidates rustls picks neither, so every HTTPS/HTTP client
/// build fails ("builder error") until one is installed. Installing fails harmlessly when
/// the process already has one.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Resolve `.` and `..` lexically (object_store paths refuse them; the file need not exist).
fn normalize(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn local_roundtrip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = Location::parse("--out", dir.path().join("run").to_str().unwrap()).unwrap();
        let model = prefix.child("model.json");
        assert!(model.uri().ends_with("/run/model.json"));
        block_on(model.write(Bytes::from_static(b"{}"))).unwrap();
        assert_eq!(block_on(model.read()).unwrap().as_ref(), b"{}");
        block_on(model.delete()).unwrap();
        block_on(model.delete()).unwrap();
        let error = block_on(model.read()).unwrap_err();
        assert_eq!(error.class(), ErrorClass::BadInput);
        assert!(error.to_string().contains("not found"), "{error}");
    }

    #[test]
    fn files_stream_up_and_down_and_local_failures_are_named() {
        let dir = tempfile::tempdir().unwrap();
        // Larger than the upload buffer (10 MiB), so S3 would take it in parts.
        let big: Vec<u8> = (0..12 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let source = dir.path().join("weights.bin");
        std::fs::write(&source, &big).unwrap();
        let object =
            Location::parse("--out", dir.path().join("out/w.bin").to_str().unwrap()).unwrap();
        assert_eq!(
            block_on(object.upload_from(&source)).unwrap(),
            big.len() as u64
        );
        let copy = dir.path().join("copy.bin");
        assert_eq!(
            block_on(object.download_to(&copy)).unwrap(),
            big.len() as u64
        );
        assert_eq!(std::fs::read(&copy).unwrap(), big);
        // A nested child is stored where its URI says: parsing the URI reads it back.
        let prefix = Location::parse("--out", dir.path().join("out").to_str().unwrap()).unwrap();
        let nested = prefix.child("tokenizer/vocab.txt");
        block_on(nested.upload_from(&source)).unwrap();
        let reread = Location::parse("--data", nested.uri()).unwrap();
        assert_eq!(block_on(reread.read()).unwrap().len(), big.len());
        assert!(dir.path().join("out/tokenizer/vocab.txt").is_file());
        let missing = block_on(object.upload_from(&dir.path().join("nope"))).unwrap_err();
        assert!(
            matches!(missing, StorageError::LocalFile { .. }),
            "{missing}"
        );
        assert!(missing.to_string().contains("nope"), "{missing}");
        let unwritable = block_on(object.download_to(&dir.path().join("no/such/dir/x")));
        assert!(matches!(unwritable, Err(StorageError::LocalFile { .. })));
        let gone = Location::parse(
            "--data",
            dir.path().join("out/absent.bin").to_str().unwrap(),
        )
        .unwrap();
        let error = block_on(gone.download_to(&copy)).unwrap_err();
        assert_eq!(error.class(), ErrorClass::BadInput, "{error}");
    }

    #[test]
    fn file_uri_and_relative_paths_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.csv");
        std::fs::write(&file, "x\n").unwrap();
        let uri = format!("file://{}", file.display());
        assert_eq!(
            block_on(Location::parse("--data", &uri).unwrap().read())
                .unwrap()
                .as_ref(),
            b"x\n"
        );
        assert!(Location::parse("--data", "relative/path.csv").is_ok());
        let dotted = format!("{}/sub/../a.csv", dir.path().display());
        assert_eq!(
            block_on(Location::parse("--data", &dotted).unwrap().read())
                .unwrap()
                .as_ref(),
            b"x\n"
        );
    }

    #[test]
    fn bad_uris_are_bad_input_naming_the_field() {
        for uri in [
            "",
            "s3://",
            "s3:///key",
            "http://example/x",
            "file://relative",
        ] {
            let error = Location::parse("--data", uri).unwrap_err();
            assert_eq!(error.class(), ErrorClass::BadInput, "{uri}");
            assert!(error.to_string().starts_with("--data:"), "{error}");
        }
    }

    #[test]
    fn s3_uri_parses_bucket_and_prefix() {
        let location = Location::parse("--out", "s3://models/churn/").unwrap();
        assert_eq!(
            location.child("model.json").uri(),
            "s3://models/churn/model.json"
        );
        assert_eq!(
            location.child("model.json").path.as_ref(),
            "churn/model.json"
        );
    }
}
