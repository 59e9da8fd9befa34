//! Class labels of parsed label columns: [`kubetrain_model::ClassSet`] built from and applied
//! to dictionary-encoded [`RawLabels`].

use kubetrain_model::ClassSet;

use crate::data::RawLabels;

/// The union of the classes in `sources`, ordered as [`kubetrain_model::labels`] documents.
pub fn class_set(sources: &[&RawLabels]) -> ClassSet {
    ClassSet::from_labels(sources.iter().flat_map(|raw| raw.dictionary.iter()))
}

/// Class index per row of `raw`; `None` for a label that is not one of `classes`.
pub fn encode(classes: &ClassSet, raw: &RawLabels) -> Vec<Option<usize>> {
    classes.encode(&raw.dictionary, &raw.codes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubetrain_model::LabelKind;

    fn raw(labels: &[&str]) -> RawLabels {
        let dictionary: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        RawLabels {
            column: "label".into(),
            codes: (0..dictionary.len() as u32).collect(),
            dictionary,
        }
    }

    // The ordering and spelling rules are the model crate's (`kubetrain_model::labels`); here
    // only what this adapter adds: the union over sources, and codes through the dictionary.
    #[test]
    fn the_classes_are_the_union_of_every_source_and_rows_encode_by_code() {
        let classes = class_set(&[&raw(&["10", "2", "007"]), &raw(&["2", "-1"])]);
        assert_eq!(classes.kind, LabelKind::Integer);
        assert_eq!(classes.labels, ["-1", "2", "7", "10"]);
        let mut rows = raw(&["dog", "bird"]);
        rows.codes = vec![1, 0, 0];
        let classes = class_set(&[&raw(&["dog", "cat"])]);
        assert_eq!(encode(&classes, &rows), [None, Some(1), Some(1)]);
    }
}
