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

    #[test]
    fn integer_labels_sort_numerically_and_canonically() {
        let classes = class_set(&[&raw(&["10", "2", "007"]), &raw(&["2", "-1"])]);
        assert_eq!(classes.kind, LabelKind::Integer);
        assert_eq!(classes.labels, ["-1", "2", "7", "10"]);
        assert_eq!(classes.index_of("07"), Some(2));
        assert_eq!(classes.index_of("3"), None);
    }

    #[test]
    fn string_labels_sort_lexicographically() {
        let classes = class_set(&[&raw(&["dog", "cat", "10"])]);
        assert_eq!(classes.kind, LabelKind::String);
        assert_eq!(classes.labels, ["10", "cat", "dog"]);
        assert_eq!(encode(&classes, &raw(&["dog", "bird"])), [Some(2), None]);
    }
}
