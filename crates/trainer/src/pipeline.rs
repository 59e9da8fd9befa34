//! `train` and `predict`: the whole run, from URIs to written results.
//!
//! # Expected flow (train)
//! check the configuration and parse every URI (so a typo fails before any work) → read the
//! data → parse it (in parallel with hashing its bytes) → classes → split → fit the scaler on
//! the training rows → fit → evaluate → write `model.json`, then `summary.json`.
//!
//! # Guarantees
//! Nothing is written before training has succeeded and both files are serialized in memory.
//! `summary.json` is written last and is the completion marker: a prefix with `model.json`
//! but no `summary.json` is incomplete (the writer was killed between the two writes; when
//! the second write fails, the model is deleted again). Each write is atomic on its own.

use std::time::{Duration, Instant};

use bytes::Bytes;
use linfa::DatasetBase;
use ndarray::{Array2, ArrayView1};
use sha2::{Digest, Sha256};

use kubetrain_model::{ClassSet, Model, Scaler, argmax_rows};
use kubetrain_storage::Location;

use crate::blocking::block_on;
use crate::cache::{self, DatasetCache};
use crate::data::{ColumnSelection, Table, parse_csv};
use crate::error::TrainError;
use crate::labels;
use crate::metrics::Evaluation;
use crate::progress::ProgressSink;
use crate::solver;
use crate::split::{split_rows, take, take_rows};

mod config;
mod summary;

pub use crate::fingerprint::Fingerprint;
pub use config::{PredictConfig, TrainConfig, Validation};
pub use summary::{FitSummary, ModelFile, Timings, TrainSummary, TrainingData};

/// Name of the model object under the output prefix.
pub const MODEL_FILE: &str = "model.json";
/// Name of the summary object under the output prefix.
pub const SUMMARY_FILE: &str = "summary.json";

/// Train a model as `config` says and write it and its summary under `config.output`.
///
/// # Errors
/// Every [`TrainError`] says what was wrong; [`TrainError::class`] says whether retrying can
/// help. On error nothing has been written (see the module guarantees).
pub fn train(config: &TrainConfig, sink: &dyn ProgressSink) -> Result<TrainSummary, TrainError> {
    let started = Instant::now();
    config.validate()?;
    let output = Location::parse("--out", &config.output)?;
    let data = Location::parse("--data", &config.data)?;
    let validation = match &config.validation {
        Validation::Data { uri } => Some(Location::parse("--validation-data", uri)?),
        Validation::Fraction { .. } => None,
    };
    let pool = build_pool(config.threads)?;

    // The cache only saves work: a directory that cannot be used means training without it.
    let cache = config.dataset_cache.as_ref().and_then(|dir| {
        DatasetCache::open(dir, cache::DEFAULT_BUDGET)
            .map_err(|error| {
                tracing::warn!(dir = %dir.display(), %error, "dataset cache unusable; reading the data without it");
            })
            .ok()
    });
    let (mut read, mut parse) = (Duration::ZERO, Duration::ZERO);
    let mut input = |uri: &str, location: &Location, selection: &ColumnSelection| {
        dataset(
            &pool,
            uri,
            location,
            selection,
            cache.as_ref(),
            &mut read,
            &mut parse,
        )
    };
    let selection = ColumnSelection {
        label: Some(config.label_column.clone()),
        label_required: true,
        features: config.feature_columns.clone(),
    };
    let (table, fingerprint) = input(&config.data, &data, &selection)?;
    let validation_input = match &validation {
        Some(location) => {
            let selection = ColumnSelection {
                features: Some(table.feature_names.clone()),
                ..selection.clone()
            };
            Some(input(location.uri(), location, &selection)?)
        }
        None => None,
    };
    let validation_fingerprint = validation_input.as_ref().map(|(_, f)| f.clone());

    let raw = labels_of(&table)?;
    let classes = match &validation_input {
        Some((v, _)) => labels::class_set(&[raw, labels_of(v)?]),
        None => labels::class_set(&[raw]),
    };
    if classes.len() < 2 {
        return Err(TrainError::SingleClass {
            uri: config.data.clone(),
            column: config.label_column.clone(),
            class: classes.labels.first().cloned().unwrap_or_default(),
        });
    }
    let y = encode(&classes, raw)?;
    let features = table.feature_names.clone();
    let rows = table.rows();
    let (mut x_train, y_train, held_out) = match (&config.validation, validation_input) {
        (Validation::Fraction { fraction, seed }, _) => {
            let split =
                split_rows(rows, *fraction, *seed).ok_or_else(|| TrainError::InvalidParameter {
                    field: "--validation-fraction",
                    message: format!("{fraction} of {rows} rows leaves no rows to train on"),
                })?;
            if split.validation.is_empty() {
                (table.features, y, None)
            } else {
                let (train_x, valid_x) = pool.install(|| {
                    rayon::join(
                        || take_rows(table.features.view(), &split.train),
                        || take_rows(table.features.view(), &split.validation),
                    )
                });
                (
                    train_x,
                    take(&y, &split.train),
                    Some((valid_x, take(&y, &split.validation))),
                )
            }
        }
        (Validation::Data { .. }, Some((v, _))) => {
            let vy = encode(&classes, labels_of(&v)?)?;
            (table.features, y, Some((v.features, vy)))
        }
        (Validation::Data { .. }, None) => {
            return Err(TrainError::Internal(
                "validation data was not loaded".into(),
            ));
        }
    };
    check_training_classes(config, &classes, &y_train)?;

    let clock = Instant::now();
    let scaler = pool.install(|| {
        let scaler = Scaler::fit(x_train.view());
        scaler.transform(x_train.view_mut());
        scaler
    });
    let dataset = DatasetBase::new(x_train.view(), ArrayView1::from(&y_train[..]))
        .with_feature_names(features.clone());
    let fitted = solver::fit(
        config.solver,
        &dataset,
        classes.len(),
        &config.params,
        &pool,
        sink,
    )?;
    let fit = clock.elapsed();

    let model = Model::from_fit(
        &config.label_column,
        features.clone(),
        &classes,
        scaler,
        fitted.coefficients.view(),
        fitted.intercepts.view(),
    );
    let (metrics, evaluated_on) = match &held_out {
        Some((x, y)) => (
            Evaluation::compute(&model.predict_proba(x.view()), y, &classes.labels),
            "validation",
        ),
        None => {
            // The training rows are already standardized: evaluate them without the scaler.
            let identity = Model {
                scaler: Scaler {
                    mean: vec![0.0; features.len()],
                    scale: vec![1.0; features.len()],
                },
                ..model.clone()
            };
            let proba = identity.predict_proba(x_train.view());
            (
                Evaluation::compute(&proba, &y_train, &classes.labels),
                "training",
            )
        }
    };

    let model_bytes = Bytes::from(
        model
            .to_json()
            .map_err(|e| TrainError::Internal(e.to_string()))?,
    );
    let model_location = output.child(MODEL_FILE);
    let summary_location = output.child(SUMMARY_FILE);
    let summary = TrainSummary::new(summary::Parts {
        config,
        model: ModelFile {
            uri: model_location.uri().to_string(),
            sha256: hex::encode(Sha256::digest(&model_bytes)),
            bytes: model_bytes.len() as u64,
        },
        dataset: TrainingData {
            fingerprint,
            features: features.clone(),
            classes: classes.labels.clone(),
            train_rows: y_train.len() as u64,
            validation_rows: held_out.as_ref().map_or(0, |(_, y)| y.len() as u64),
        },
        validation_dataset: validation_fingerprint,
        metrics,
        evaluated_on,
        fitted: &fitted,
        timings: Timings::new(read, parse, fit, started.elapsed()),
    });
    let summary_bytes = Bytes::from(
        serde_json::to_vec_pretty(&summary).map_err(|e| TrainError::Internal(e.to_string()))?,
    );
    block_on(async {
        model_location.write(model_bytes).await?;
        if let Err(error) = summary_location.write(summary_bytes).await {
            let _ = model_location.delete().await;
            return Err(error.into());
        }
        Ok(())
    })?;
    Ok(summary)
}

/// Predictions for every row of a data file.
#[derive(Debug, Clone)]
pub struct Predictions {
    /// The model's class labels, in probability-column order.
    pub classes: Vec<String>,
    /// Predicted class index per row.
    pub predicted: Vec<usize>,
    /// Probabilities, rows × classes.
    pub probabilities: Array2<f64>,
    /// Accuracy when the data has the label column (labels the model does not know count as
    /// wrong).
    pub accuracy: Option<f64>,
}

/// Predict every row of `config.data` with the model at `config.model`.
pub fn predict(config: &PredictConfig) -> Result<Predictions, TrainError> {
    let model_location = Location::parse("--model", &config.model)?;
    let data = Location::parse("--data", &config.data)?;
    let pool = build_pool(config.threads)?;
    let (model_bytes, bytes) =
        block_on(async { Ok((model_location.read().await?, data.read().await?)) })?;
    let model = Model::from_json(&model_bytes).map_err(|reason| TrainError::Model {
        uri: config.model.clone(),
        reason,
    })?;
    let selection = ColumnSelection {
        label: Some(
            config
                .label_column
                .clone()
                .unwrap_or_else(|| model.label_column.clone()),
        ),
        label_required: config.label_column.is_some(),
        features: Some(model.feature_names.clone()),
    };
    let (table, _) = load(&pool, &config.data, &bytes, &selection)?;
    let probabilities = pool.install(|| model.predict_proba(table.features.view()));
    let predicted = argmax_rows(&probabilities);
    let accuracy = table.labels.as_ref().map(|raw| {
        let truth = labels::encode(&model.class_set(), raw);
        let correct = truth
            .iter()
            .zip(&predicted)
            .filter(|(t, p)| **t == Some(**p))
            .count();
        correct as f64 / truth.len().max(1) as f64
    });
    Ok(Predictions {
        classes: model.classes,
        predicted,
        probabilities,
        accuracy,
    })
}

fn build_pool(threads: Option<usize>) -> Result<rayon::ThreadPool, TrainError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .thread_name(|i| format!("kubetrain-{i}"))
        .build()
        .map_err(|e| TrainError::Internal(format!("cannot start worker threads: {e}")))
}

/// One input file as a table: loaded from the dataset cache when it holds this object, else
/// read, parsed and hashed (and then kept in the cache). Adds the time spent to `read` and
/// `parse`.
fn dataset(
    pool: &rayon::ThreadPool,
    uri: &str,
    location: &Location,
    selection: &ColumnSelection,
    cache: Option<&DatasetCache>,
    read: &mut Duration,
    parse: &mut Duration,
) -> Result<(Table, Fingerprint), TrainError> {
    let clock = Instant::now();
    if let Some(cache) = cache {
        let meta = block_on(async { Ok(location.head().await?) })?;
        if let Some(hit) = cache.load(&DatasetCache::key(uri, &meta, selection)) {
            *read += clock.elapsed();
            tracing::info!(uri, "dataset loaded from the dataset cache");
            return Ok(hit);
        }
    }
    let (bytes, meta) = block_on(async { Ok(location.read_with_meta().await?) })?;
    *read += clock.elapsed();
    let clock = Instant::now();
    let loaded = load(pool, uri, &bytes, selection)?;
    *parse += clock.elapsed();
    if let Some(cache) = cache {
        // Keyed by the object as it was read (it may have changed since the head).
        let key = DatasetCache::key(uri, &meta, selection);
        if let Err(error) = cache.store(&key, &loaded.0, &loaded.1) {
            tracing::warn!(uri, %error, "could not keep the dataset in the dataset cache");
        }
    }
    Ok(loaded)
}

/// Parse and hash one file at once (the hash runs beside the parser).
fn load(
    pool: &rayon::ThreadPool,
    uri: &str,
    bytes: &Bytes,
    selection: &ColumnSelection,
) -> Result<(Table, Fingerprint), TrainError> {
    let (table, sha256) = pool.install(|| {
        rayon::join(
            || parse_csv(bytes, selection),
            || hex::encode(Sha256::digest(bytes)),
        )
    });
    let table = table.map_err(|e| TrainError::data(uri, e))?;
    let fingerprint = Fingerprint {
        uri: uri.to_string(),
        rows: table.rows() as u64,
        bytes: bytes.len() as u64,
        sha256,
    };
    Ok((table, fingerprint))
}

fn labels_of(table: &Table) -> Result<&crate::data::RawLabels, TrainError> {
    table
        .labels
        .as_ref()
        .ok_or_else(|| TrainError::Internal("the label column was not read".into()))
}

fn encode(classes: &ClassSet, raw: &crate::data::RawLabels) -> Result<Vec<usize>, TrainError> {
    labels::encode(classes, raw)
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| TrainError::Internal("a label is missing from the class set".into()))
}

fn check_training_classes(
    config: &TrainConfig,
    classes: &ClassSet,
    y_train: &[usize],
) -> Result<(), TrainError> {
    let mut counts = vec![0usize; classes.len()];
    for &c in y_train {
        counts[c] += 1;
    }
    let present: Vec<usize> = (0..classes.len()).filter(|&c| counts[c] > 0).collect();
    if present.len() < 2 {
        return Err(TrainError::SingleClass {
            uri: config.data.clone(),
            column: config.label_column.clone(),
            class: present
                .first()
                .map(|&c| classes.labels[c].clone())
                .unwrap_or_default(),
        });
    }
    if let Some(missing) = (0..classes.len()).find(|&c| counts[c] == 0) {
        return Err(TrainError::UnseenClass {
            class: classes.labels[missing].clone(),
        });
    }
    Ok(())
}

impl Timings {
    fn new(read: Duration, parse: Duration, fit: Duration, total: Duration) -> Timings {
        Timings {
            read_seconds: read.as_secs_f64(),
            parse_seconds: parse.as_secs_f64(),
            fit_seconds: fit.as_secs_f64(),
            total_seconds: total.as_secs_f64(),
        }
    }
}

#[cfg(test)]
#[path = "pipeline/tests.rs"]
mod tests;
