//! Class labels: the ordered set of classes a model predicts, built from raw label strings.
//!
//! Labels that all parse as integers are integer labels: they compare numerically (`2` before
//! `10`) and are written canonically (`007` is `7`). Anything else is a string label, ordered
//! lexicographically. The order fixes class indices, and so the model's rows of coefficients.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

/// Whether the labels are integers or arbitrary strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LabelKind {
    /// Every label parsed as a 64-bit integer.
    Integer,
    /// At least one label is not an integer.
    String,
}

/// The classes of a model, in index order.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassSet {
    /// Class labels, index = class index.
    pub labels: Vec<String>,
    /// How the labels are compared and written.
    pub kind: LabelKind,
    index: HashMap<String, usize>,
}

impl ClassSet {
    /// The classes among `labels` (repeats allowed), ordered as the module documents.
    pub fn from_labels<'a>(labels: impl Iterator<Item = &'a String> + Clone) -> ClassSet {
        let all = labels;
        let integers: Option<BTreeSet<i64>> = all.clone().map(|l| l.trim().parse().ok()).collect();
        match integers {
            Some(values) => Self::new(
                values.iter().map(i64::to_string).collect(),
                LabelKind::Integer,
            ),
            None => {
                let values: BTreeSet<&String> = all.collect();
                Self::new(values.into_iter().cloned().collect(), LabelKind::String)
            }
        }
    }

    /// A class set with the given labels in this order (e.g. read from a model).
    pub fn new(labels: Vec<String>, kind: LabelKind) -> ClassSet {
        let index = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i))
            .collect();
        ClassSet {
            labels,
            kind,
            index,
        }
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no classes.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The class index of one raw label, if it is one of these classes.
    pub fn index_of(&self, label: &str) -> Option<usize> {
        match self.kind {
            LabelKind::Integer => {
                let value: i64 = label.trim().parse().ok()?;
                self.index.get(&value.to_string()).copied()
            }
            LabelKind::String => self.index.get(label).copied(),
        }
    }

    /// Class index per row of dictionary-encoded labels (`codes` index `dictionary`);
    /// `None` for a label that is not one of these classes.
    ///
    /// # Panics
    /// If a code is not an index into `dictionary`.
    pub fn encode(&self, dictionary: &[String], codes: &[u32]) -> Vec<Option<usize>> {
        let per_code: Vec<Option<usize>> = dictionary.iter().map(|l| self.index_of(l)).collect();
        codes.iter().map(|&c| per_code[c as usize]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn integer_labels_sort_numerically_and_canonically() {
        let all = [labels(&["10", "2", "007"]), labels(&["2", "-1"])];
        let classes = ClassSet::from_labels(all.iter().flatten());
        assert_eq!(classes.kind, LabelKind::Integer);
        assert_eq!(classes.labels, ["-1", "2", "7", "10"]);
        assert_eq!(classes.index_of("07"), Some(2));
        assert_eq!(classes.index_of("3"), None);
    }

    #[test]
    fn string_labels_sort_lexicographically() {
        let classes = ClassSet::from_labels(labels(&["dog", "cat", "10"]).iter());
        assert_eq!(classes.kind, LabelKind::String);
        assert_eq!(classes.labels, ["10", "cat", "dog"]);
        assert_eq!(
            classes.encode(&labels(&["dog", "bird"]), &[1, 0, 0]),
            [None, Some(2), Some(2)]
        );
    }
}
