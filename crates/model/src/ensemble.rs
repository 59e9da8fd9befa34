//! What the tree models (`boosting`, `forest`) share besides their trees: the columns and
//! classes they predict, and the normalised gain importance of each feature.

use serde::{Deserialize, Serialize};

use crate::{ClassSet, LabelKind};

/// The columns a tree model reads and predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Columns {
    /// The label (classification) or target (regression) column the model was trained on.
    pub label_column: String,
    /// Feature columns; splits name them by index into this list.
    pub feature_names: Vec<String>,
    /// A classifier's class labels in class-index order; absent for a regressor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// A classifier's label kind; absent for a regressor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_kind: Option<LabelKind>,
    /// Per feature, its share of the total gain (loss reduction) of every split on it; sums
    /// to 1 unless no tree split at all (then every entry is 0).
    pub feature_importance: Vec<f64>,
}

impl Columns {
    /// The columns of a classifier (`classes` given) or a regressor.
    pub fn new(
        label_column: &str,
        feature_names: Vec<String>,
        classes: Option<&ClassSet>,
        feature_importance: Vec<f64>,
    ) -> Columns {
        Columns {
            label_column: label_column.to_owned(),
            feature_names,
            classes: classes.map(|c| c.labels.clone()),
            label_kind: classes.map(|c| c.kind),
            feature_importance,
        }
    }

    /// A classifier's classes as a [`ClassSet`].
    pub fn class_set(&self) -> Option<ClassSet> {
        let (Some(labels), Some(kind)) = (&self.classes, self.label_kind) else {
            return None;
        };
        Some(ClassSet::new(labels.clone(), kind))
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        let p = self.feature_names.len();
        if self.feature_importance.len() != p {
            return Err(format!(
                "featureImportance must have {p} entries (one per feature)"
            ));
        }
        match (&self.classes, self.label_kind) {
            (Some(classes), Some(_)) if classes.len() < 2 => Err(format!(
                "{} classes; a classifier needs at least 2",
                classes.len()
            )),
            (Some(_), None) | (None, Some(_)) => {
                Err("classes and labelKind are given together or not at all".into())
            }
            _ => Ok(()),
        }
    }
}
