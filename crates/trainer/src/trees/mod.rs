//! kubetrain's own decision trees: histogram-based, grown leaf-wise, for gradient boosting
//! ([`boosting`]) and random forests ([`forest`]).
//!
//! Flow: feature values → bins ([`binning`]) → per-node gradient histograms and the best
//! split they allow ([`histogram`]) → one tree ([`grower`]) → an ensemble. The trees are
//! stored in the model crate's flat format ([`kubetrain_model::trees::Trees`]).
//!
//! No well-kept Rust crate does this fast enough (see the README's benchmark): linfa-trees
//! fits classification trees only and scans every row per node; LightGBM and scikit-learn
//! are the oracles the tests compare with.

pub mod binning;
pub mod boosting;
pub mod forest;
pub mod grower;
pub mod histogram;

use kubetrain_model::trees::Trees;

/// What the trees learn to predict, one entry per training row.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Class indices below `classes`.
    Classes {
        /// Class index per row.
        y: &'a [usize],
        /// The number of classes (at least 2).
        classes: usize,
    },
    /// Numbers.
    Values(&'a [f64]),
}

impl Target<'_> {
    /// The number of classes; 0 for values.
    pub fn classes(&self) -> usize {
        match self {
            Target::Classes { classes, .. } => *classes,
            Target::Values(_) => 0,
        }
    }
}

/// The trees of a fit and how the fit went.
#[derive(Debug, Clone)]
pub struct TreeFit {
    /// The trees kept.
    pub trees: Trees,
    /// Per feature, its share of the kept trees' total split gain.
    pub importance: Vec<f64>,
    /// Per iteration (boosting) or tree (forest): training and validation loss.
    pub history: Vec<(f64, Option<f64>)>,
    /// Iterations (boosting) or trees (forest) kept.
    pub kept: usize,
    /// Whether early stopping ended the fit.
    pub stopped_early: bool,
}

impl TreeFit {
    fn new(
        trees: Trees,
        gains_per_tree: &[Vec<(usize, f64)>],
        features: usize,
        history: Vec<(f64, Option<f64>)>,
        kept: usize,
        stopped_early: bool,
    ) -> TreeFit {
        let mut importance = vec![0.0; features];
        for &(f, gain) in gains_per_tree.iter().flatten() {
            importance[f] += gain;
        }
        let total: f64 = importance.iter().sum();
        if total > 0.0 {
            importance.iter_mut().for_each(|v| *v /= total);
        }
        TreeFit {
            trees,
            importance,
            history,
            kept,
            stopped_early,
        }
    }
}

/// A seed for the `index`-th draw of a fit seeded with `seed` (SplitMix64's mixing, so
/// neighbouring indices give unrelated streams).
pub fn sub_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
