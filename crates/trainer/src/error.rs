//! Errors of the trainer, each classified so a caller can tell bad input from a transient
//! failure (see [`ErrorClass`] and `kubetrain_api::exit_code`).

pub use kubetrain_api::ErrorClass;
use kubetrain_storage::StorageError;

/// A problem with the content of a CSV file. Rows are 1-based data rows (the header is not
/// counted); the file line is `row + 1`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    #[error("the file is empty: expected a header row and at least one data row")]
    EmptyFile,
    #[error("the file has a header but no data rows: at least one data row is needed")]
    NoRows,
    #[error("the data is not valid UTF-8 near byte {offset}: CSV files must be UTF-8 text")]
    NotUtf8 { offset: usize },
    #[error("the header names column '{column}' twice: column names must be unique")]
    DuplicateColumn { column: String },
    #[error("{role} column '{column}' is not in the header; available columns: {available}")]
    MissingColumn {
        role: &'static str,
        column: String,
        available: String,
    },
    #[error("column '{column}' is both the label column and a feature column")]
    LabelIsFeature { column: String },
    #[error("no feature columns: the file has only the label column '{label}'")]
    NoFeatures { label: String },
    #[error("row {row} (line {line}) has {found} fields but the header has {expected}", line = row + 1)]
    FieldCount {
        row: usize,
        found: usize,
        expected: usize,
    },
    #[error("row {row} (line {line}), column '{column}': value is missing; every feature needs a number", line = row + 1)]
    MissingValue { row: usize, column: String },
    #[error("row {row} (line {line}), column '{column}': '{value}' is not a number; features must be numeric (e.g. 1.5, -3, 2e-4)", line = row + 1)]
    NonNumeric {
        row: usize,
        column: String,
        value: String,
    },
    #[error("row {row} (line {line}), column '{column}': {value} is not a finite number; NaN and infinity are not allowed", line = row + 1)]
    NonFinite {
        row: usize,
        column: String,
        value: f32,
    },
    #[error("row {row} (line {line}): label column '{column}' is empty; every row needs a label", line = row + 1)]
    MissingLabel { row: usize, column: String },
    #[error("unreadable CSV: {message}")]
    Csv { message: String },
}

/// Everything that can go wrong in [`crate::train`] and [`crate::predict`].
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{field}: {message}")]
    InvalidParameter {
        field: &'static str,
        message: String,
    },
    /// Reading or writing storage failed, or a location is unusable.
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{uri}: {source}")]
    Data {
        uri: String,
        #[source]
        source: DataError,
    },
    #[error(
        "{uri}: label column '{column}' has a single class '{class}'; at least two classes are needed"
    )]
    SingleClass {
        uri: String,
        column: String,
        class: String,
    },
    #[error(
        "class '{class}' appears in the validation data but not in the training split; every class needs training rows"
    )]
    UnseenClass { class: String },
    #[error("{uri}: not a usable kubetrain model: {reason}")]
    Model { uri: String, reason: String },
    #[error("the solver failed: {0}")]
    Solver(String),
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
