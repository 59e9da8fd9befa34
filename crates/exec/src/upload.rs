//! The model directory to storage: every file the program wrote, under the output URI with
//! its relative path, then `summary.json` listing them with their SHA-256 digests. Nothing is
//! uploaded unless the program exited 0, and a failed upload removes what it stored, so the
//! output URI holds a whole model or nothing of this attempt.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kubetrain_api::{ErrorClass, ModelRef, TrainerError};
use kubetrain_storage::{Location, StorageError};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::ExecConfig;
use crate::inputs::storage_error;
use crate::program::Ended;
use crate::signals::{StopSignals, stopped};

/// The summary kubetrain writes beside the model files.
pub use kubetrain_api::SUMMARY_FILE as SUMMARY;

/// What was stored.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The main model file: `model.json`, else the first (by path) whose name starts with
    /// `model`, else the only file, else the largest.
    pub main: ModelRef,
    /// The stored `summary.json`.
    pub summary: serde_json::Value,
}

/// One file of the model directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelFile {
    /// Path relative to the model directory, `/`-separated.
    relative: String,
    path: PathBuf,
    bytes: u64,
    sha256: String,
}

/// Create the model directory; one that already holds files is refused, since everything in
/// it would be uploaded as this attempt's model.
///
/// # Errors
/// The directory has files, or cannot be created.
pub fn prepare_model_dir(dir: &Path) -> Result<(), TrainerError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        TrainerError::new(
            ErrorClass::Transient,
            format!("creating the model directory {}: {e}", dir.display()),
        )
    })?;
    let has_files = std::fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if has_files {
        return Err(TrainerError::new(
            ErrorClass::BadInput,
            format!(
                "the model directory {} is not empty: everything in it would be uploaded as \
                 this run's model; give each attempt an empty KUBETRAIN_MODEL_DIR",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Upload the model directory and the summary.
///
/// # Errors
/// No files (bad input: a run's model must be there), a `summary.json` of the program's own
/// (bad input), or a storage failure (its class), after removing what was stored.
pub async fn model_dir(
    config: &ExecConfig,
    ended: &Ended,
    elapsed: Duration,
    signals: &mut StopSignals,
) -> Result<Stored, TrainerError> {
    let dir = config.model_dir.clone();
    let files = tokio::task::spawn_blocking(move || list(&dir))
        .await
        .map_err(|e| TrainerError::new(ErrorClass::Internal, e.to_string()))??;
    if files.is_empty() {
        return Err(TrainerError::new(
            ErrorClass::BadInput,
            format!(
                "the program exited 0 but wrote no files into KUBETRAIN_MODEL_DIR ({}): the \
                 model must be written there to be stored under {}",
                config.model_dir.display(),
                config.out
            ),
        ));
    }
    if files.iter().any(|f| f.relative == SUMMARY) {
        return Err(TrainerError::new(
            ErrorClass::BadInput,
            format!(
                "the program wrote {SUMMARY} into KUBETRAIN_MODEL_DIR; kubetrain writes that \
                 name (the list of files and their digests): name yours differently"
            ),
        ));
    }
    let out = Location::parse("KUBETRAIN_OUT", &config.out).map_err(storage_error)?;
    let mut stored = Vec::new();
    for file in &files {
        let target = out.child(&file.relative);
        // Asked to stop mid-upload: what was stored goes, so no partial model is left.
        let failed = tokio::select! {
            uploaded = target.upload_from(&file.path) => uploaded.err().map(storage_error),
            signal = signals.recv() => Some(stopped(signal, "while uploading the model")),
        };
        stored.push(target);
        if let Some(error) = failed {
            remove(&stored).await;
            return Err(error);
        }
    }
    let refs: Vec<ModelRef> = files
        .iter()
        .map(|f| ModelRef {
            uri: out.child(&f.relative).uri().to_owned(),
            sha256: f.sha256.clone(),
            bytes: f.bytes,
        })
        .collect();
    let main = refs[main_file(&files)].clone();
    let summary = json!({
        "contract": kubetrain_api::custom::CONTRACT_VERSION,
        // The program only: arguments may hold expanded secrets (`$(TOKEN)`).
        "program": ended.command.first(),
        "exitCode": 0,
        "elapsedSeconds": elapsed.as_secs_f64(),
        "metrics": ended.metrics,
        "model": main,
        "files": files.iter().zip(&refs).map(|(f, r)| json!({
            "path": f.relative, "uri": r.uri, "sha256": r.sha256, "bytes": r.bytes,
        })).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec_pretty(&summary).unwrap_or_default();
    let summary_location = out.child(SUMMARY);
    let failed = tokio::select! {
        written = summary_location.write(bytes.into()) => written.err().map(storage_error),
        signal = signals.recv() => Some(stopped(signal, "while uploading the model")),
    };
    if let Some(error) = failed {
        stored.push(summary_location);
        remove(&stored).await;
        return Err(error);
    }
    Ok(Stored { main, summary })
}

/// Best effort: a failed upload leaves nothing behind it could.
async fn remove(stored: &[Location]) {
    for location in stored {
        let _ = location.delete().await;
    }
}

/// The index of the main file in `files` (sorted by path, not empty): a kubetrain model file
/// (`model.json`, which the gateway can serve), else the first named `model*`, else the only
/// or largest file.
fn main_file(files: &[ModelFile]) -> usize {
    if let Some(kubetrain) = files.iter().position(|f| f.relative == "model.json") {
        return kubetrain;
    }
    let named_model = files.iter().position(|f| {
        Path::new(&f.relative)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("model"))
    });
    named_model.unwrap_or_else(|| {
        files
            .iter()
            .enumerate()
            .max_by_key(|(i, f)| (f.bytes, std::cmp::Reverse(*i)))
            .map_or(0, |(i, _)| i)
    })
}

/// Every regular file under `dir` (recursively; a symbolic link to a file counts as that
/// file, links to directories are not followed), sorted by path, with its size and digest.
fn list(dir: &Path) -> Result<Vec<ModelFile>, TrainerError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| local("listing", &current, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| local("listing", &current, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| local("reading", &path, e))?;
            let linked_file =
                kind.is_symlink() && std::fs::metadata(&path).is_ok_and(|m| m.is_file());
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() || linked_file {
                let relative = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let (bytes, sha256) = digest(&path)?;
                files.push(ModelFile {
                    relative,
                    path,
                    bytes,
                    sha256,
                });
            }
        }
    }
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(files)
}

/// Size and SHA-256 (lowercase hex) of a file, read in 1 MiB chunks.
fn digest(path: &Path) -> Result<(u64, String), TrainerError> {
    let mut file = std::fs::File::open(path).map_err(|e| local("reading", path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| local("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

fn local(action: &'static str, path: &Path, source: std::io::Error) -> TrainerError {
    storage_error(StorageError::LocalFile {
        action,
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(relative: &str, bytes: u64) -> ModelFile {
        ModelFile {
            relative: relative.into(),
            path: PathBuf::from(relative),
            bytes,
            sha256: String::new(),
        }
    }

    #[test]
    fn the_main_file_is_named_model_else_the_only_else_the_largest() {
        let named = [
            file("a/weights.bin", 9),
            file("b/model.pt", 1),
            file("model2", 5),
        ];
        assert_eq!(main_file(&named), 1);
        assert_eq!(main_file(&[file("clf.joblib", 3)]), 0);
        let unnamed = [file("a.bin", 3), file("b.bin", 7), file("c.bin", 7)];
        assert_eq!(main_file(&unnamed), 1);
    }

    #[test]
    fn listing_walks_subdirectories_with_digests_and_refuses_a_used_directory() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        prepare_model_dir(&model).unwrap();
        std::fs::create_dir_all(model.join("tokenizer")).unwrap();
        std::fs::write(model.join("model.bin"), b"abc").unwrap();
        std::fs::write(model.join("tokenizer/vocab.txt"), b"").unwrap();
        // A link to a file is that file (e.g. a cache snapshot); a dangling one is nothing.
        std::os::unix::fs::symlink(model.join("model.bin"), model.join("weights.bin")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), model.join("dangling")).unwrap();
        let files = list(&model).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(names, ["model.bin", "tokenizer/vocab.txt", "weights.bin"]);
        assert_eq!(files[2].sha256, files[0].sha256);
        assert_eq!(files[0].bytes, 3);
        assert_eq!(
            files[0].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let used = prepare_model_dir(&model).unwrap_err();
        assert_eq!(used.reason, "BadInput");
        assert!(used.message.contains("not empty"), "{}", used.message);
    }
}
