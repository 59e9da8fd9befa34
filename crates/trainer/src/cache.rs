//! Parsed datasets kept on local disk between runs (`kubetrain train --dataset-cache DIR`).
//!
//! Training on the same data again (a hyperparameter sweep, a retry, a retrain of unchanged
//! data) would read, hash and parse the same bytes again. With a cache directory the trainer
//! keeps what parsing produced (the feature matrix, the label codes, the file's fingerprint)
//! and the next run on the same object loads that instead.
//!
//! # Guarantees
//! - The key is the data URI, the size, last-modified time, ETag and version the store reports
//!   for the object (S3: a content-derived ETag; local files: inode, size and modification time
//!   in nanoseconds), and the column selection. An object that changes gets a new key; the
//!   fingerprint (with the SHA-256 of the bytes) in an entry is the one computed from them.
//! - An entry is written to a temporary file and renamed into place, so concurrent trainers
//!   never read half an entry; both writers of the same key write the same bytes.
//! - An entry carries the SHA-256 of its body. Anything unreadable, truncated, of another
//!   layout version or with a wrong digest is a miss (the data is read and parsed as without a
//!   cache) and is replaced.
//! - The directory is trimmed to a byte budget after each write, least recently used first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ndarray::{Array2, ShapeBuilder};
use object_store::ObjectMeta;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::{ColumnSelection, RawLabels, Table};
use crate::fingerprint::Fingerprint;

/// First bytes of every entry: name and layout version.
const MAGIC: &[u8; 8] = b"KTDSET01";
/// File name suffix of entries.
const SUFFIX: &str = ".ktds";
/// Default byte budget of a cache directory.
pub const DEFAULT_BUDGET: u64 = 1 << 30;

/// A directory of parsed datasets.
#[derive(Debug, Clone)]
pub struct DatasetCache {
    dir: PathBuf,
    budget: u64,
}

/// What an entry says besides the numbers.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    key: String,
    rows: usize,
    feature_names: Vec<String>,
    label: Option<(String, Vec<String>)>,
    fingerprint: Fingerprint,
}

impl DatasetCache {
    /// A cache in `dir` (created when missing) holding at most `budget` bytes.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(dir: &Path, budget: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            budget,
        })
    }

    /// The key of `uri` as the store describes it (`meta`), read with `selection`.
    pub fn key(uri: &str, meta: &ObjectMeta, selection: &ColumnSelection) -> String {
        let identity = serde_json::json!({
            "uri": uri,
            "size": meta.size,
            "lastModified": meta.last_modified.timestamp_nanos_opt(),
            "eTag": meta.e_tag,
            "version": meta.version,
            "label": selection.label,
            "labelRequired": selection.label_required,
            "features": selection.features,
        });
        hex::encode(Sha256::digest(identity.to_string().as_bytes()))
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}{SUFFIX}"))
    }

    /// The entry for `key`, if there is an intact one.
    pub fn load(&self, key: &str) -> Option<(Table, Fingerprint)> {
        let path = self.path(key);
        let bytes = std::fs::read(&path).ok()?;
        let entry = decode(key, &bytes);
        if entry.is_some() {
            // Recently used: trimmed last.
            if let Ok(file) = std::fs::File::options().append(true).open(&path) {
                let _ = file.set_modified(SystemTime::now());
            }
        }
        entry
    }

    /// Keep `table` and `fingerprint` under `key`, then trim the directory to the budget.
    ///
    /// # Errors
    /// The entry could not be written (the run goes on without it).
    pub fn store(
        &self,
        key: &str,
        table: &Table,
        fingerprint: &Fingerprint,
    ) -> std::io::Result<()> {
        let bytes = encode(key, table, fingerprint)?;
        let temporary = self.dir.join(format!(
            ".{key}.{}.{}.tmp",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let written = std::fs::File::create(&temporary)
            .and_then(|mut file| file.write_all(&bytes))
            .and_then(|()| std::fs::rename(&temporary, self.path(key)));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written?;
        self.trim();
        Ok(())
    }

    /// Delete least recently used entries until the directory fits the budget.
    fn trim(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(SUFFIX))
            .filter_map(|entry| {
                let meta = entry.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), entry.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= self.budget {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
            }
        }
    }
}

/// `MAGIC`, header length (u64 LE), header JSON, the feature columns one after another (f32
/// LE), the label codes (u32 LE), then the SHA-256 of everything before it.
fn encode(key: &str, table: &Table, fingerprint: &Fingerprint) -> std::io::Result<Vec<u8>> {
    let header = Header {
        key: key.to_owned(),
        rows: table.rows(),
        feature_names: table.feature_names.clone(),
        label: table
            .labels
            .as_ref()
            .map(|l| (l.column.clone(), l.dictionary.clone())),
        fingerprint: fingerprint.clone(),
    };
    let header = serde_json::to_vec(&header)?;
    let codes = table.labels.as_ref().map_or(0, |l| l.codes.len());
    let mut out = Vec::with_capacity(
        MAGIC.len() + 8 + header.len() + table.features.len() * 4 + codes * 4 + 32,
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for column in table.features.columns() {
        for value in column {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    if let Some(labels) = &table.labels {
        for code in &labels.codes {
            out.extend_from_slice(&code.to_le_bytes());
        }
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

fn decode(key: &str, bytes: &[u8]) -> Option<(Table, Fingerprint)> {
    let (body, digest) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if Sha256::digest(body).as_slice() != digest {
        return None;
    }
    let rest = body.strip_prefix(MAGIC)?;
    let (length, rest) = rest.split_at_checked(8)?;
    let length = usize::try_from(u64::from_le_bytes(length.try_into().ok()?)).ok()?;
    let (header, rest) = rest.split_at_checked(length)?;
    let header: Header = serde_json::from_slice(header).ok()?;
    if header.key != key {
        return None;
    }
    let cells = header.rows.checked_mul(header.feature_names.len())?;
    let (features, rest) = rest.split_at_checked(cells.checked_mul(4)?)?;
    let features: Vec<f32> = features
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let features =
        Array2::from_shape_vec((header.rows, header.feature_names.len()).f(), features).ok()?;
    let labels = match header.label {
        Some((column, dictionary)) => {
            let (codes, rest) = rest.split_at_checked(header.rows.checked_mul(4)?)?;
            if !rest.is_empty() {
                return None;
            }
            let codes: Vec<u32> = codes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if codes.iter().any(|&c| c as usize >= dictionary.len()) {
                return None;
            }
            Some(RawLabels {
                column,
                dictionary,
                codes,
            })
        }
        None if rest.is_empty() => None,
        None => return None,
    };
    let table = Table {
        feature_names: header.feature_names,
        features,
        labels,
    };
    Some((table, header.fingerprint))
}

#[cfg(test)]
mod tests;
