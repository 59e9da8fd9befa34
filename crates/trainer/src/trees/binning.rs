//! Feature values to small integers: each feature's values are cut into at most `max_bins`
//! bins at quantiles of the training rows, so a tree only ever looks at bin numbers (one
//! byte per value) and a split's candidates are the bin boundaries (LightGBM's and
//! scikit-learn's histogram-based trees do the same).
//!
//! Bins of feature `f` are numbered from 0 upward in value order; a value `v` falls into the
//! first bin `b` with `v <= upper[f][b]` (the last bin has no upper bound), and a missing
//! value (NaN) into the bin after the last, [`BinnedMatrix::missing_bin`].

use ndarray::ArrayView2;
use rayon::prelude::*;

/// Rows used to choose the bin boundaries (LightGBM's `bin_construct_sample_cnt`,
/// scikit-learn's `subsample` of its binner: 200,000 both).
const SAMPLE_ROWS: usize = 200_000;

/// A feature matrix as bin numbers, column-major: `bins[f * rows + r]`.
#[derive(Debug, Clone)]
pub struct BinnedMatrix {
    /// Rows.
    pub rows: usize,
    /// Per feature, the upper bound of each bin but the last, ascending.
    pub upper: Vec<Vec<f32>>,
    /// Bin numbers, feature by feature.
    pub bins: Vec<u8>,
}

impl BinnedMatrix {
    /// Choose at most `max_bins` (2..=255) bins per feature from the rows of `x`
    /// (rows × features, any layout) and bin every value.
    pub fn fit(x: ArrayView2<'_, f32>, max_bins: usize) -> BinnedMatrix {
        let rows = x.nrows();
        let max_bins = max_bins.clamp(2, 255);
        let step = rows.div_ceil(SAMPLE_ROWS).max(1);
        let per_feature: Vec<(Vec<f32>, Vec<u8>)> = (0..x.ncols())
            .into_par_iter()
            .map(|f| {
                let column = x.column(f);
                let sample: Vec<f32> = column.iter().step_by(step).copied().collect();
                let upper = bin_bounds(sample, max_bins);
                let missing = missing_bin(&upper);
                let bins = column.iter().map(|&v| bin_of(&upper, missing, v)).collect();
                (upper, bins)
            })
            .collect();
        let mut bins = Vec::with_capacity(rows * per_feature.len());
        let mut upper = Vec::with_capacity(per_feature.len());
        for (u, b) in per_feature {
            upper.push(u);
            bins.extend_from_slice(&b);
        }
        BinnedMatrix { rows, upper, bins }
    }

    /// The number of features.
    pub fn features(&self) -> usize {
        self.upper.len()
    }

    /// Feature `f`'s bin of every row.
    pub fn column(&self, f: usize) -> &[u8] {
        &self.bins[f * self.rows..(f + 1) * self.rows]
    }

    /// The bin that holds feature `f`'s missing values: one past its value bins.
    pub fn missing_bin(&self, f: usize) -> u8 {
        missing_bin(&self.upper[f])
    }

    /// The largest number of bins of any feature, the missing bin included.
    pub fn max_bins_with_missing(&self) -> usize {
        self.upper.iter().map(|u| u.len() + 2).max().unwrap_or(2)
    }

    /// The threshold of a split that sends bins `0..=bin` of feature `f` left: the bin's
    /// upper bound.
    pub fn threshold(&self, f: usize, bin: u8) -> f32 {
        self.upper[f]
            .get(usize::from(bin))
            .copied()
            .unwrap_or(f32::MAX)
    }
}

fn missing_bin(upper: &[f32]) -> u8 {
    u8::try_from(upper.len() + 1).unwrap_or(u8::MAX)
}

fn bin_of(upper: &[f32], missing: u8, v: f32) -> u8 {
    if v.is_nan() {
        missing
    } else {
        // upper has at most 254 entries: the index fits.
        upper.partition_point(|&u| u < v) as u8
    }
}

/// Upper bounds of at most `max_bins` bins for the values in `sample`: a bin per distinct
/// value when there are few enough, else bins of about equal counts in which no distinct
/// value is cut in two.
fn bin_bounds(mut sample: Vec<f32>, max_bins: usize) -> Vec<f32> {
    sample.retain(|v| !v.is_nan());
    sample.sort_unstable_by(f32::total_cmp);
    let mut distinct: Vec<(f32, usize)> = Vec::new();
    for v in sample.iter().copied() {
        match distinct.last_mut() {
            Some((last, count)) if *last == v => *count += 1,
            _ => distinct.push((v, 1)),
        }
    }
    if distinct.len() <= 1 {
        return Vec::new();
    }
    let mut upper = Vec::new();
    if distinct.len() <= max_bins {
        for pair in distinct.windows(2) {
            upper.push(between(pair[0].0, pair[1].0));
        }
        return upper;
    }
    // Greedy equal-count cuts: close a bin once it holds its share of the rows left over the
    // bins left.
    let total = sample.len();
    let (mut seen, mut in_bin) = (0usize, 0usize);
    for (i, &(v, count)) in distinct.iter().enumerate() {
        seen += count;
        in_bin += count;
        let bins_left = max_bins - upper.len();
        let share = (total - (seen - in_bin)) as f64 / bins_left as f64;
        if i + 1 < distinct.len() && bins_left > 1 && in_bin as f64 >= share {
            upper.push(between(v, distinct[i + 1].0));
            in_bin = 0;
        }
    }
    upper
}

/// A threshold `t` with `a <= t < b` (`a < b`): their midpoint when a 32-bit float can hold
/// one, else `a`.
fn between(a: f32, b: f32) -> f32 {
    let mid = ((f64::from(a) + f64::from(b)) / 2.0) as f32;
    if a <= mid && mid < b { mid } else { a }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ndarray::Array2;

    #[test]
    fn few_distinct_values_get_a_bin_each_and_nan_its_own() {
        let x = Array2::from_shape_vec((5, 1), vec![3.0f32, 1.0, f32::NAN, 3.0, 2.0]).unwrap();
        let binned = BinnedMatrix::fit(x.view(), 255);
        assert_eq!(binned.upper[0], [1.5, 2.5]);
        assert_eq!(binned.column(0), [2, 0, 3, 2, 1]);
        assert_eq!(binned.missing_bin(0), 3);
        // The threshold of bin b sends exactly the values of bins 0..=b left.
        assert_eq!(binned.threshold(0, 0), 1.5);
    }

    #[test]
    fn many_values_are_cut_into_equal_counts_without_splitting_a_value() {
        let mut values: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        values.extend(std::iter::repeat_n(500.0, 1000));
        let x = Array2::from_shape_vec((values.len(), 1), values.clone()).unwrap();
        let binned = BinnedMatrix::fit(x.view(), 10);
        assert!(binned.upper[0].len() <= 9, "{:?}", binned.upper[0]);
        let column = binned.column(0);
        let mut counts = [0usize; 11];
        for &b in column {
            counts[usize::from(b)] += 1;
        }
        // Every value of 500.0 is in one bin; every value falls where its bounds say.
        let bins_of_500: std::collections::BTreeSet<u8> = values
            .iter()
            .zip(column)
            .filter(|(v, _)| **v == 500.0)
            .map(|(_, b)| *b)
            .collect();
        assert_eq!(bins_of_500.len(), 1);
        for (&v, &b) in values.iter().zip(column) {
            let upper = &binned.upper[0];
            assert!(usize::from(b) == upper.len() || v <= upper[usize::from(b)]);
            assert!(b == 0 || v > upper[usize::from(b) - 1]);
        }
    }

    #[test]
    fn adjacent_floats_still_split() {
        let a = 1.0f32;
        let b = f32::from_bits(a.to_bits() + 1);
        let t = between(a, b);
        assert!(a <= t && t < b);
        let x = Array2::from_shape_vec((2, 1), vec![a, b]).unwrap();
        assert_eq!(BinnedMatrix::fit(x.view(), 255).column(0), [0, 1]);
    }
}
