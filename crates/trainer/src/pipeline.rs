//! `train` and `predict`: the whole run, from URIs to written results.
//!
//! # Expected flow (train)
//! check the configuration and parse every URI (so a typo fails before any work) → read the
//! data → parse it (in parallel with hashing its bytes) → the task's middle
//! ([`classification`]: classes → split → scaler → logistic fit → accuracy, log loss;
//! [`regression`]: numeric targets → split → scaler → least squares → RMSE, MAE, R²;
//! [`trees`]: either task's targets → split → boosted trees or a forest → its metrics) →
//! write `model.json`, then `summary.json`.
//!
//! # Guarantees
//! Nothing is written before training has succeeded and both files are serialized in memory.
//! `summary.json` is written last and is the completion marker: a prefix with `model.json`
//! but no `summary.json` is incomplete (the writer was killed between the two writes; when
//! the second write fails, the model is deleted again). Each write is atomic on its own.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ndarray::Array2;
use sha2::{Digest, Sha256};

use kubetrain_model::{Model, Prediction, argmax_rows};
use kubetrain_storage::Location;

use crate::blocking::block_on;
use crate::cache::{self, DatasetCache};
use crate::data::{ColumnSelection, Table, parse_csv};
use crate::error::TrainError;
use crate::history::Recorder;
use crate::labels;
use crate::metrics::{Evaluation, RegressionMetrics};
use crate::progress::ProgressSink;
use crate::split::{split_rows, take, take_rows};
use crate::targets;

mod classification;
mod config;
mod regression;
mod summary;
mod trees;

pub use crate::fingerprint::Fingerprint;
pub use config::{AlgorithmConfig, PredictConfig, TrainConfig, Validation};
pub use summary::{FitSummary, ModelFile, Timings, TrainSummary, TrainingData};

/// Name of the model object under the output prefix.
pub const MODEL_FILE: &str = "model.json";
/// Name of the summary object under the output prefix.
pub use kubetrain_api::SUMMARY_FILE;

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

    let measured = crate::memory::reset_peak();
    let clock = Instant::now();
    let inputs = Inputs {
        table,
        validation: validation_input.map(|(table, _)| table),
    };
    let recorder = Recorder::new(sink);
    let trained = match &config.algorithm {
        AlgorithmConfig::LogisticRegression { solver, params } => {
            classification::fit(config, *solver, params, inputs, &pool, &recorder)?
        }
        AlgorithmConfig::LinearRegression(params) => {
            regression::fit(config, params, inputs, &pool, &recorder)?
        }
        AlgorithmConfig::GradientBoostedTrees(_) | AlgorithmConfig::RandomForest(_) => {
            trees::fit(config, inputs, &pool, &recorder)?
        }
    };
    let loss_history = recorder.finish();
    let fit = clock.elapsed();
    let fit_peak = measured.and_then(|()| crate::memory::peak_bytes());
    let features = trained.model.feature_names().to_vec();
    let model = trained.model;

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
            features,
            classes: model.classes().map(<[String]>::to_vec).unwrap_or_default(),
            train_rows: trained.train_rows,
            validation_rows: trained.validation_rows,
        },
        validation_dataset: validation_fingerprint,
        metrics: trained.metrics,
        feature_weights: model
            .feature_weights()
            .into_iter()
            .map(|(name, weight)| kubetrain_api::FeatureWeight { name, weight })
            .collect(),
        evaluated_on: trained.evaluated_on,
        fit: trained.fit,
        loss_history,
        timings: Timings {
            fit_peak_memory_bytes: fit_peak,
            ..Timings::new(read, parse, fit, started.elapsed())
        },
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
    /// What the model said about each row.
    pub prediction: Prediction,
    /// A classifier's class labels, in probability-column order; empty for a regressor.
    pub classes: Vec<String>,
    /// A classifier's accuracy when the data has the label column (labels the model does not
    /// know count as wrong).
    pub accuracy: Option<f64>,
    /// A regressor's metrics when the data has the target column (which must hold numbers).
    pub regression: Option<RegressionMetrics>,
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
                .unwrap_or_else(|| model.label_column().to_owned()),
        ),
        label_required: config.label_column.is_some(),
        features: Some(model.feature_names().to_vec()),
    };
    let (table, _) = load(&pool, &config.data, &bytes, &selection)?;
    let prediction = pool.install(|| model.predict(table.features.view()));
    let (mut accuracy, mut regression) = (None, None);
    match (&table.labels, &prediction, model.class_set()) {
        (Some(raw), Prediction::Probabilities(proba), Some(classes)) => {
            let truth = labels::encode(&classes, raw);
            let predicted = argmax_rows(proba);
            let correct = truth
                .iter()
                .zip(&predicted)
                .filter(|(t, p)| **t == Some(**p))
                .count();
            accuracy = Some(correct as f64 / truth.len().max(1) as f64);
        }
        (Some(raw), Prediction::Values(values), _) => match targets::numeric(raw) {
            Ok(truth) => regression = Some(RegressionMetrics::compute(&values.to_vec(), &truth)),
            // Asked to score against this column: its values must be numbers.
            Err(e) if config.label_column.is_some() => {
                return Err(TrainError::data(&config.data, e));
            }
            // Found by the model's name only: a column that is not all numbers (targets not
            // known yet) is not scored, and the predictions are still made.
            Err(e) => tracing::info!(error = %e, "not scoring against the target column"),
        },
        _ => {}
    }
    Ok(Predictions {
        classes: model.classes().map(<[String]>::to_vec).unwrap_or_default(),
        prediction,
        accuracy,
        regression,
    })
}

/// The task's middle of the pipeline hands back the model and how it did.
struct Trained {
    model: Model,
    metrics: Evaluation,
    /// `validation` or `training`.
    evaluated_on: &'static str,
    fit: FitSummary,
    train_rows: u64,
    validation_rows: u64,
}

/// The parsed training table and, when given, the separate validation table.
struct Inputs {
    table: Table,
    validation: Option<Table>,
}

/// Training rows and targets, and the rows and targets the metrics are computed on: the
/// split of `features` the configuration asks for, or the separate validation file's
/// (`validation`: its targets and features). `None` when the fraction is 0: the metrics are
/// then computed on the training rows.
#[allow(clippy::type_complexity)]
fn hold_out<T: Copy + Send + Sync>(
    config: &TrainConfig,
    pool: &rayon::ThreadPool,
    features: Array2<f32>,
    y: Vec<T>,
    validation: Option<(Vec<T>, Array2<f32>)>,
) -> Result<(Array2<f32>, Vec<T>, Option<(Array2<f32>, Vec<T>)>), TrainError> {
    let rows = features.nrows();
    match (&config.validation, validation) {
        (Validation::Fraction { fraction, seed }, _) => {
            let split =
                split_rows(rows, *fraction, *seed).ok_or_else(|| TrainError::InvalidParameter {
                    field: "--validation-fraction",
                    message: format!("{fraction} of {rows} rows leaves no rows to train on"),
                })?;
            if split.validation.is_empty() {
                return Ok((features, y, None));
            }
            let (train_x, valid_x) = pool.install(|| {
                rayon::join(
                    || take_rows(features.view(), &split.train),
                    || take_rows(features.view(), &split.validation),
                )
            });
            Ok((
                train_x,
                take(&y, &split.train),
                Some((valid_x, take(&y, &split.validation))),
            ))
        }
        (Validation::Data { .. }, Some((vy, vx))) => Ok((features, y, Some((vx, vy)))),
        (Validation::Data { .. }, None) => Err(TrainError::Internal(
            "validation data was not loaded".into(),
        )),
    }
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

impl Timings {
    fn new(read: Duration, parse: Duration, fit: Duration, total: Duration) -> Timings {
        Timings {
            read_seconds: read.as_secs_f64(),
            parse_seconds: parse.as_secs_f64(),
            fit_seconds: fit.as_secs_f64(),
            total_seconds: total.as_secs_f64(),
            fit_peak_memory_bytes: None,
        }
    }
}

#[cfg(test)]
#[path = "pipeline/tests.rs"]
mod tests;
