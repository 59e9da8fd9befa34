//! Regression targets: the label column read as numbers.

use crate::data::RawLabels;
use crate::error::DataError;

/// One `f64` per row of `raw` (each distinct spelling parsed once; surrounding spaces
/// ignored).
///
/// # Errors
/// [`DataError::NonNumericTarget`] naming the first row whose value is not a finite number.
pub fn numeric(raw: &RawLabels) -> Result<Vec<f64>, DataError> {
    let values: Vec<Option<f64>> = raw
        .dictionary
        .iter()
        .map(|text| text.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect();
    raw.codes
        .iter()
        .enumerate()
        .map(|(i, &code)| {
            values[code as usize].ok_or_else(|| DataError::NonNumericTarget {
                row: i + 1,
                column: raw.column.clone(),
                value: raw.dictionary[code as usize].clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(rows: &[&str]) -> RawLabels {
        let mut dictionary: Vec<String> = Vec::new();
        let codes = rows
            .iter()
            .map(|r| match dictionary.iter().position(|d| d == r) {
                Some(i) => i as u32,
                None => {
                    dictionary.push(r.to_string());
                    (dictionary.len() - 1) as u32
                }
            })
            .collect();
        RawLabels {
            column: "target".into(),
            dictionary,
            codes,
        }
    }

    #[test]
    fn numbers_in_any_spelling_are_read() {
        assert_eq!(
            numeric(&raw(&["1", " 2.5", "-3e2", "1", "0x"])).unwrap_err(),
            DataError::NonNumericTarget {
                row: 5,
                column: "target".into(),
                value: "0x".into()
            }
        );
        assert_eq!(
            numeric(&raw(&["1", " 2.5", "-3e2", "1"])).unwrap(),
            [1.0, 2.5, -300.0, 1.0]
        );
    }

    #[test]
    fn every_non_finite_value_names_its_row() {
        for bad in ["NaN", "inf", "-infinity", "1e400", "yes", "1,5"] {
            let error = numeric(&raw(&["1", bad])).unwrap_err();
            let text = error.to_string();
            assert!(
                text.starts_with("row 2 (line 3), column 'target'"),
                "{bad}: {text}"
            );
            assert!(text.contains(&format!("'{bad}'")), "{text}");
        }
    }
}
