//! Standardization: `(x - mean) / scale`, fit on the training split only.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Per-feature mean and scale (population standard deviation; 1 for a constant feature, so
/// that it maps to 0 instead of dividing by zero).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Mean of each feature on the training rows.
    pub mean: Vec<f64>,
    /// Standard deviation of each feature on the training rows (1 when it is 0).
    pub scale: Vec<f64>,
}

impl Scaler {
    /// Fit on the rows of `x` (rows × features, any layout; column-major is fastest).
    pub fn fit(x: ArrayView2<'_, f32>) -> Scaler {
        let stats: Vec<(f64, f64)> = (0..x.ncols())
            .into_par_iter()
            .map(|j| {
                let column = x.column(j);
                let n = column.len().max(1) as f64;
                let mean = column.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
                let var = column
                    .iter()
                    .map(|&v| (f64::from(v) - mean).powi(2))
                    .sum::<f64>()
                    / n;
                let std = var.sqrt();
                (mean, if std > 1e-12 { std } else { 1.0 })
            })
            .collect();
        Scaler {
            mean: stats.iter().map(|s| s.0).collect(),
            scale: stats.iter().map(|s| s.1).collect(),
        }
    }

    /// Standardize `x` in place.
    pub fn transform(&self, mut x: ArrayViewMut2<'_, f32>) {
        let rows = x.nrows();
        let column_major = x.t().is_standard_layout();
        match x.as_slice_memory_order_mut() {
            Some(data) if column_major && rows > 0 => data
                .par_chunks_mut(rows)
                .zip(self.mean.par_iter().zip(&self.scale))
                .for_each(|(column, (&mean, &scale))| {
                    for v in column {
                        *v = ((f64::from(*v) - mean) / scale) as f32;
                    }
                }),
            _ => {
                for (mut column, (&mean, &scale)) in x
                    .axis_iter_mut(Axis(1))
                    .zip(self.mean.iter().zip(&self.scale))
                {
                    column.mapv_inplace(|v| ((f64::from(v) - mean) / scale) as f32);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn standardizes_and_leaves_constant_features_at_zero() {
        let mut x = array![[1.0f32, 5.0], [3.0, 5.0]];
        let scaler = Scaler::fit(x.view());
        assert_eq!(scaler.mean, [2.0, 5.0]);
        assert_eq!(scaler.scale, [1.0, 1.0]);
        scaler.transform(x.view_mut());
        assert_eq!(x, array![[-1.0, 0.0], [1.0, 0.0]]);
    }
}
