//! Deterministic train/validation split.
//!
//! # Guarantees
//! The same row count, fraction and seed give the same split on every machine and thread
//! count: rows are shuffled with ChaCha8 seeded from `seed`, and the first
//! `round(rows × fraction)` (at least one when the fraction is positive) become validation
//! rows. Both index lists come back sorted, so the copies keep the file's row order.

use ndarray::{Array2, ArrayView2, ShapeBuilder};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Row indices of the two parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Rows to fit on.
    pub train: Vec<usize>,
    /// Rows to evaluate on; empty when the fraction is 0.
    pub validation: Vec<usize>,
}

/// Split `rows` rows; `fraction` must be in [0, 1). Returns `None` when nothing would be left
/// to train on.
pub fn split_rows(rows: usize, fraction: f64, seed: u64) -> Option<Split> {
    if fraction <= 0.0 {
        return Some(Split {
            train: (0..rows).collect(),
            validation: Vec::new(),
        });
    }
    let validation_rows = ((rows as f64 * fraction).round() as usize).max(1);
    if validation_rows >= rows {
        return None;
    }
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut validation = order[..validation_rows].to_vec();
    let mut train = order[validation_rows..].to_vec();
    validation.sort_unstable();
    train.sort_unstable();
    Some(Split { train, validation })
}

/// Copy the given rows of a matrix into a new column-major matrix (columns in parallel).
pub fn take_rows(x: ArrayView2<'_, f32>, rows: &[usize]) -> Array2<f32> {
    let n = rows.len();
    let mut data = vec![0f32; n * x.ncols()];
    if n > 0 {
        data.par_chunks_mut(n).enumerate().for_each(|(j, out)| {
            let column = x.column(j);
            for (o, &r) in out.iter_mut().zip(rows) {
                *o = column[r];
            }
        });
    }
    Array2::from_shape_vec((n, x.ncols()).f(), data)
        .unwrap_or_else(|_| Array2::zeros((n, x.ncols()).f()))
}

/// Pick elements by index.
pub fn take<T: Copy>(values: &[T], rows: &[usize]) -> Vec<T> {
    rows.iter().map(|&r| values[r]).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use ndarray::array;

    #[test]
    fn same_seed_same_split_different_seed_different_split() {
        let a = split_rows(1000, 0.2, 7).unwrap();
        assert_eq!(a, split_rows(1000, 0.2, 7).unwrap());
        assert_ne!(a, split_rows(1000, 0.2, 8).unwrap());
        assert_eq!(a.validation.len(), 200);
        assert_eq!(a.train.len(), 800);
        let mut all: Vec<usize> = a.train.iter().chain(&a.validation).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn fraction_zero_trains_on_everything() {
        let s = split_rows(5, 0.0, 1).unwrap();
        assert_eq!(s.train, [0, 1, 2, 3, 4]);
        assert!(s.validation.is_empty());
    }

    #[test]
    fn tiny_data_keeps_one_validation_row_or_refuses() {
        assert_eq!(split_rows(3, 0.01, 1).unwrap().validation.len(), 1);
        assert!(split_rows(1, 0.5, 1).is_none());
    }

    #[test]
    fn take_rows_is_column_major_and_ordered() {
        let x = array![[1.0f32, 10.0], [2.0, 20.0], [3.0, 30.0]];
        let picked = take_rows(x.view(), &[0, 2]);
        assert_eq!(picked, array![[1.0, 10.0], [3.0, 30.0]]);
        assert!(picked.column(1).as_slice().is_some());
    }
}
