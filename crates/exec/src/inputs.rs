//! The program's inputs on local disk: the dataset (and validation dataset) downloaded before
//! it starts, so reading them takes no storage client (`KUBETRAIN_DATA_FILE`,
//! `KUBETRAIN_VALIDATION_DATA_FILE`).

use std::path::{Path, PathBuf};

use kubetrain_api::TrainerError;
use kubetrain_storage::{Location, StorageError};

use crate::ExecConfig;

/// `KUBETRAIN_DATA_FILE`: the local copy of `KUBETRAIN_DATA`.
pub const ENV_DATA_FILE: &str = "KUBETRAIN_DATA_FILE";
/// `KUBETRAIN_VALIDATION_DATA_FILE`: the local copy of `KUBETRAIN_VALIDATION_DATA`.
pub const ENV_VALIDATION_DATA_FILE: &str = "KUBETRAIN_VALIDATION_DATA_FILE";

/// The downloaded inputs, as variables for the program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalInputs {
    /// `(name, path)` pairs: [`ENV_DATA_FILE`] and, with validation data,
    /// [`ENV_VALIDATION_DATA_FILE`].
    pub env: Vec<(&'static str, PathBuf)>,
}

/// Download the datasets into `config.download_dir` (nothing without one). The files keep
/// their object's name (`train.csv`), the validation file prefixed `validation-`.
///
/// # Errors
/// A dataset that is missing or forbidden (bad input), unreachable storage or a full disk
/// (transient).
pub async fn download(config: &ExecConfig) -> Result<LocalInputs, TrainerError> {
    let Some(dir) = &config.download_dir else {
        return Ok(LocalInputs::default());
    };
    std::fs::create_dir_all(dir).map_err(|e| {
        storage_error(StorageError::LocalFile {
            action: "creating",
            path: dir.display().to_string(),
            source: e,
        })
    })?;
    let mut env = vec![(
        ENV_DATA_FILE,
        fetch("KUBETRAIN_DATA", &config.data, dir, "").await?,
    )];
    if let Some(uri) = &config.validation_data {
        env.push((
            ENV_VALIDATION_DATA_FILE,
            fetch("KUBETRAIN_VALIDATION_DATA", uri, dir, "validation-").await?,
        ));
    }
    Ok(LocalInputs { env })
}

async fn fetch(
    field: &'static str,
    uri: &str,
    dir: &Path,
    prefix: &str,
) -> Result<PathBuf, TrainerError> {
    let location = Location::parse(field, uri).map_err(storage_error)?;
    let name = location
        .path()
        .filename()
        .filter(|n| !n.is_empty())
        .unwrap_or("data");
    let file = dir.join(format!("{prefix}{name}"));
    location.download_to(&file).await.map_err(storage_error)?;
    Ok(file)
}

/// A storage failure as the attempt's error, in its class.
pub(crate) fn storage_error(error: StorageError) -> TrainerError {
    TrainerError::new(error.class(), error.to_string())
}
