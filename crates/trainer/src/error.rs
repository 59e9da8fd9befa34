//! Errors of the trainer, each classified so a caller can tell bad input from a transient
//! failure (see [`ErrorClass`] and `kubetrain_api::exit_code`).

pub use kubetrain_api::ErrorClass;
use kubetrain_storage::StorageError;

/// A problem with the content of a CSV file. Rows are 1-based data rows (the header is not
/// counted); the file line is `row + 1`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    /// Not even a header row.
    #[error("the file is empty: expected a header row and at least one data row")]
    EmptyFile,
    /// A header row and nothing else.
    #[error("the file has a header but no data rows: at least one data row is needed")]
    NoRows,
    /// Bytes that are not UTF-8.
    #[error("the data is not valid UTF-8 near byte {offset}: CSV files must be UTF-8 text")]
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// Two header fields with the same name.
    #[error("the header names column '{column}' twice: column names must be unique")]
    DuplicateColumn {
        /// The repeated name.
        column: String,
    },
    /// A column the run names is not in the header.
    #[error("{role} column '{column}' is not in the header; available columns: {available}")]
    MissingColumn {
        /// `label` or `feature`.
        role: &'static str,
        /// The name asked for.
        column: String,
        /// The header's names, comma-separated.
        available: String,
    },
    /// The label column is also listed as a feature.
    #[error("column '{column}' is both the label column and a feature column")]
    LabelIsFeature {
        /// The column.
        column: String,
    },
    /// Nothing to train on but the label.
    #[error("no feature columns: the file has only the label column '{label}'")]
    NoFeatures {
        /// The label column.
        label: String,
    },
    /// A row with more or fewer fields than the header.
    #[error("row {row} (line {line}) has {found} fields but the header has {expected}", line = row + 1)]
    FieldCount {
        /// 1-based data row.
        row: usize,
        /// Fields in the row.
        found: usize,
        /// Fields in the header.
        expected: usize,
    },
    /// An empty feature value.
    #[error("row {row} (line {line}), column '{column}': value is missing; every feature needs a number", line = row + 1)]
    MissingValue {
        /// 1-based data row.
        row: usize,
        /// The feature column.
        column: String,
    },
    /// A feature value that does not parse as a number.
    #[error("row {row} (line {line}), column '{column}': '{value}' is not a number; features must be numeric (e.g. 1.5, -3, 2e-4)", line = row + 1)]
    NonNumeric {
        /// 1-based data row.
        row: usize,
        /// The feature column.
        column: String,
        /// The value as written.
        value: String,
    },
    /// NaN or an infinity.
    #[error("row {row} (line {line}), column '{column}': {value} is not a finite number; NaN and infinity are not allowed", line = row + 1)]
    NonFinite {
        /// 1-based data row.
        row: usize,
        /// The feature column.
        column: String,
        /// The value read.
        value: f32,
    },
    /// A row without a label.
    #[error("row {row} (line {line}): label column '{column}' is empty; every row needs a label", line = row + 1)]
    MissingLabel {
        /// 1-based data row.
        row: usize,
        /// The label column.
        column: String,
    },
    /// A regression target that is not a finite number.
    #[error("row {row} (line {line}), column '{column}': '{value}' is not a number; a regression target must be a finite number (e.g. 151.0, -3, 2e-4)", line = row + 1)]
    NonNumericTarget {
        /// 1-based data row.
        row: usize,
        /// The target (label) column.
        column: String,
        /// The value as written.
        value: String,
    },
    /// The CSV reader's own complaint (quoting, encoding).
    #[error("unreadable CSV: {message}")]
    Csv {
        /// What the reader said.
        message: String,
    },
}

/// Everything that can go wrong in [`crate::train`] and [`crate::predict`].
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A flag or parameter is out of range or conflicts with another.
    #[error("{field}: {message}")]
    InvalidParameter {
        /// The flag (`--validation-fraction`).
        field: &'static str,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// Reading or writing storage failed, or a location is unusable.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The content of a data file is wrong.
    #[error("{uri}: {source}")]
    Data {
        /// The file.
        uri: String,
        /// What is wrong, with its row and column.
        #[source]
        source: DataError,
    },
    /// Every row has the same label.
    #[error(
        "{uri}: label column '{column}' has a single class '{class}'; at least two classes are needed"
    )]
    SingleClass {
        /// The file.
        uri: String,
        /// The label column.
        column: String,
        /// The one class.
        class: String,
    },
    /// The validation data has a class the training split lacks.
    #[error(
        "class '{class}' appears in the validation data but not in the training split; every class needs training rows"
    )]
    UnseenClass {
        /// The class.
        class: String,
    },
    /// A model file that is not a kubetrain model this build reads.
    #[error("{uri}: not a usable kubetrain model: {reason}")]
    Model {
        /// The model file.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The solver could not fit.
    #[error("the solver failed: {0}")]
    Solver(String),
    /// A bug or an unexpected state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl TrainError {
    /// The class of this error, which decides the exit code and whether a retry can help.
    pub fn class(&self) -> ErrorClass {
        match self {
            TrainError::InvalidParameter { .. }
            | TrainError::Data { .. }
            | TrainError::SingleClass { .. }
            | TrainError::UnseenClass { .. }
            | TrainError::Model { .. } => ErrorClass::BadInput,
            TrainError::Storage(e) => e.class(),
            TrainError::Solver(_) | TrainError::Internal(_) => ErrorClass::Internal,
        }
    }

    /// Shorthand for `self.class().exit_code()`.
    pub fn exit_code(&self) -> i32 {
        self.class().exit_code()
    }

    pub(crate) fn data(uri: &str, source: DataError) -> Self {
        TrainError::Data {
            uri: uri.to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubetrain_api::exit_code;

    #[test]
    fn classes_map_to_the_api_exit_codes() {
        let bad = TrainError::data("x.csv", DataError::NoRows);
        assert_eq!(bad.exit_code(), exit_code::BAD_INPUT);
        let transient = TrainError::from(StorageError::Read {
            uri: "s3://b/k".into(),
            source: object_store::Error::Generic {
                store: "S3",
                source: "connection refused".into(),
            },
        });
        assert_eq!(transient.exit_code(), exit_code::TRANSIENT);
        assert_eq!(
            TrainError::Internal("x".into()).exit_code(),
            exit_code::INTERNAL
        );
    }

    #[test]
    fn row_errors_name_row_line_and_column() {
        let e = DataError::NonNumeric {
            row: 3,
            column: "f2".into(),
            value: "abc".into(),
        };
        let text = e.to_string();
        assert!(text.contains("row 3 (line 4)"), "{text}");
        assert!(text.contains("column 'f2'"), "{text}");
        assert!(text.contains("'abc'"), "{text}");
    }
}
