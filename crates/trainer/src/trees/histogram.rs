//! Gradient statistics per bin, and the best split they allow.
//!
//! Every row carries `K` gradients and one hessian (the tree builder's targets). A node's
//! histogram holds, for each feature and bin, the sums of the gradients, of the hessians and
//! the row count of the node's rows in that bin: `K + 2` numbers per bin. A split sending
//! bins `0..=b` left scores, with `G` the gradient sums and `H` the hessian sum of a side,
//! `Σ_k G_k² / (H + λ)` per side; its gain is the sides' scores minus the node's (XGBoost's
//! and LightGBM's split gain, Chen & Guestrin 2016, eq. 7, without the `γ` term). With
//! `K` = 1, gradient `p − y` and hessian `p(1 − p)` this is the second-order step of the
//! log loss; with one-hot `−y` gradients and unit hessians it is the reduction in Gini
//! impurity, and with `−y` the reduction in squared error, times the row count.

use rayon::prelude::*;

use super::binning::BinnedMatrix;

/// Limits on a split's children.
#[derive(Debug, Clone, Copy)]
pub struct SplitRules {
    /// Fewest rows on each side.
    pub min_samples_leaf: usize,
    /// Smallest hessian sum on each side (LightGBM's `min_sum_hessian_in_leaf`).
    pub min_child_weight: f64,
    /// `λ`: the L2 penalty on leaf values.
    pub l2_penalty: f64,
}

/// The best split of one node found so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Feature index.
    pub feature: usize,
    /// Bins `0..=bin` go left.
    pub bin: u8,
    /// Whether the missing bin goes left.
    pub missing_left: bool,
    /// Loss reduction.
    pub gain: f64,
    /// Statistics of the left side (`K + 2` numbers).
    pub left: Vec<f64>,
}

/// The statistics of rows: `K` gradients per row (row-major) and a hessian per row.
#[derive(Debug, Clone)]
pub struct RowStats {
    /// Gradients per row.
    pub k: usize,
    /// `rows × k` gradients.
    pub gradients: Vec<f64>,
    /// One hessian per row.
    pub hessians: Vec<f64>,
}

impl RowStats {
    /// Numbers per bin: `k` gradient sums, the hessian sum, the row count.
    pub fn width(&self) -> usize {
        self.k + 2
    }

    /// The summed statistics of `rows`.
    pub fn total(&self, rows: &[u32]) -> Vec<f64> {
        let mut sum = vec![0.0; self.width()];
        for &r in rows {
            self.add_row(&mut sum, r as usize);
        }
        sum
    }

    #[inline]
    fn add_row(&self, into: &mut [f64], r: usize) {
        let k = self.k;
        for (s, g) in into[..k]
            .iter_mut()
            .zip(&self.gradients[r * k..(r + 1) * k])
        {
            *s += g;
        }
        into[k] += self.hessians[r];
        into[k + 1] += 1.0;
    }
}

/// Histograms of some features of one node: `stride` bins per feature, `width` numbers per
/// bin, the features in the order of `features`.
#[derive(Debug, Clone)]
pub struct Histogram {
    features: Vec<usize>,
    data: Vec<f64>,
    stride: usize,
    width: usize,
}

impl Histogram {
    /// The histogram of `rows` over `features`, features built in parallel.
    pub fn build(
        binned: &BinnedMatrix,
        stats: &RowStats,
        rows: &[u32],
        features: &[usize],
    ) -> Histogram {
        let stride = binned.max_bins_with_missing();
        let width = stats.width();
        let mut data = vec![0.0; features.len() * stride * width];
        // Gathered once in row order, so each feature's pass reads them sequentially.
        let (gradients, hessians) = gather(stats, rows);
        data.par_chunks_mut(stride * width)
            .zip(features.par_iter())
            .for_each(|(bins, &f)| {
                let column = binned.column(f);
                let k = stats.k;
                if k == 1 {
                    for ((&r, &g), &h) in rows.iter().zip(&gradients).zip(&hessians) {
                        let b = usize::from(column[r as usize]) * 3;
                        bins[b] += g;
                        bins[b + 1] += h;
                        bins[b + 2] += 1.0;
                    }
                } else {
                    for (i, &r) in rows.iter().enumerate() {
                        let b = usize::from(column[r as usize]) * width;
                        let row = &gradients[i * k..(i + 1) * k];
                        for (s, g) in bins[b..b + k].iter_mut().zip(row) {
                            *s += g;
                        }
                        bins[b + k] += hessians[i];
                        bins[b + k + 1] += 1.0;
                    }
                }
            });
        Histogram {
            features: features.to_vec(),
            data,
            stride,
            width,
        }
    }

    /// `self − other` bin by bin: a sibling's histogram from its parent's (the subtraction
    /// trick: only the smaller child is ever built from rows). Both must cover the same
    /// features.
    pub fn subtract(mut self, other: &Histogram) -> Histogram {
        debug_assert_eq!(self.features, other.features);
        self.data
            .par_chunks_mut(4096)
            .zip(other.data.par_chunks(4096))
            .for_each(|(a, b)| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x -= y;
                }
            });
        self
    }

    /// The best split over the histogram's features of a node whose statistics sum to
    /// `total`, or `None` when no split obeys `rules` with a positive gain.
    pub fn best_split(
        &self,
        binned: &BinnedMatrix,
        total: &[f64],
        rules: &SplitRules,
    ) -> Option<Split> {
        let size = self.stride * self.width;
        let width = self.width;
        self.data
            .par_chunks(size)
            .zip(self.features.par_iter())
            .filter_map(|(bins, &f)| {
                let value_bins = binned.upper[f].len() + 1;
                let missing = usize::from(binned.missing_bin(f)) * width;
                let sparse = (0..value_bins)
                    .filter(|&b| bins[b * width + width - 1] > 0.0)
                    .map(|b| (b as u8, &bins[b * width..(b + 1) * width]));
                best_split_of_feature(f, sparse, &bins[missing..missing + width], total, rules)
            })
            .reduce_with(better)
    }
}

/// The better of two splits: higher gain, ties to the lower feature then bin (so the result
/// does not depend on the order of a parallel search).
pub fn better(a: Split, b: Split) -> Split {
    let key = |s: &Split| (s.feature, s.bin);
    match a.gain.total_cmp(&b.gain) {
        std::cmp::Ordering::Greater => a,
        std::cmp::Ordering::Less => b,
        std::cmp::Ordering::Equal if key(&a) <= key(&b) => a,
        std::cmp::Ordering::Equal => b,
    }
}

fn gather(stats: &RowStats, rows: &[u32]) -> (Vec<f64>, Vec<f64>) {
    let k = stats.k;
    let mut gradients = Vec::with_capacity(rows.len() * k);
    let mut hessians = Vec::with_capacity(rows.len());
    for &r in rows {
        let r = r as usize;
        gradients.extend_from_slice(&stats.gradients[r * k..(r + 1) * k]);
        hessians.push(stats.hessians[r]);
    }
    (gradients, hessians)
}

/// `Σ_k G_k² / (H + λ)` of a side's statistics.
pub fn score(side: &[f64], l2_penalty: f64) -> f64 {
    let k = side.len() - 2;
    let h = side[k] + l2_penalty;
    if h <= 0.0 {
        return 0.0;
    }
    side[..k].iter().map(|g| g * g).sum::<f64>() / h
}

/// The best split of feature `f` given its non-empty value bins in ascending order
/// (`bins`: bin number and its `K + 2` statistics), its missing bin's statistics and the
/// node's total. Missing values are tried on both sides; when the node has none, they go
/// with the side that has more rows (scikit-learn's rule for unseen missing values).
pub fn best_split_of_feature<'a>(
    f: usize,
    bins: impl Iterator<Item = (u8, &'a [f64])>,
    missing: &[f64],
    total: &[f64],
    rules: &SplitRules,
) -> Option<Split> {
    scan_feature(
        f,
        bins,
        missing,
        total,
        rules,
        &mut Scratch::new(total.len()),
    )
}

/// Buffers of one split scan, reused across features.
struct Scratch {
    left: Vec<f64>,
    right: Vec<f64>,
    with_missing: Vec<f64>,
    best_left: Vec<f64>,
    zero: Vec<f64>,
}

impl Scratch {
    fn new(width: usize) -> Scratch {
        Scratch {
            left: vec![0.0; width],
            right: vec![0.0; width],
            with_missing: vec![0.0; width],
            best_left: vec![0.0; width],
            zero: vec![0.0; width],
        }
    }
}

fn scan_feature<'a>(
    f: usize,
    bins: impl Iterator<Item = (u8, &'a [f64])>,
    missing: &[f64],
    total: &[f64],
    rules: &SplitRules,
    scratch: &mut Scratch,
) -> Option<Split> {
    let width = total.len();
    let k = width - 2;
    let parent = score(total, rules.l2_penalty);
    // Gains below this are rounding noise (a pure node, or a useless split).
    let noise = 1e-10 * parent.abs().max(1e-300) + f64::MIN_POSITIVE;
    let has_missing = missing[k + 1] > 0.0;
    let Scratch {
        left,
        right,
        with_missing,
        best_left,
        ..
    } = scratch;
    left.fill(0.0);
    // (gain, bin, missing_left) of the best split so far; its left statistics in best_left.
    let mut best: Option<(f64, u8, bool)> = None;
    let mut bins = bins.peekable();
    while let Some((bin, stats)) = bins.next() {
        for (l, s) in left.iter_mut().zip(stats) {
            *l += s;
        }
        // With every value bin on the left, only "values left, missing right" is a split.
        let last = bins.peek().is_none();
        if last && !has_missing {
            break;
        }
        for missing_left in [false, true] {
            if missing_left && (!has_missing || last) {
                continue;
            }
            for i in 0..width {
                with_missing[i] = left[i] + if missing_left { missing[i] } else { 0.0 };
                right[i] = total[i] - with_missing[i];
            }
            let (n_left, n_right) = (with_missing[k + 1], right[k + 1]);
            if n_left < rules.min_samples_leaf as f64
                || n_right < rules.min_samples_leaf as f64
                || with_missing[k] < rules.min_child_weight
                || right[k] < rules.min_child_weight
            {
                continue;
            }
            let gain =
                score(with_missing, rules.l2_penalty) + score(right, rules.l2_penalty) - parent;
            if gain > noise && best.is_none_or(|(g, _, _)| gain > g) {
                let side = if has_missing {
                    missing_left
                } else {
                    n_left >= n_right
                };
                best = Some((gain, bin, side));
                best_left.copy_from_slice(with_missing);
            }
        }
    }
    best.map(|(gain, bin, missing_left)| Split {
        feature: f,
        bin,
        missing_left,
        gain,
        left: best_left.clone(),
    })
}

/// The best split among `features` of one node, one feature at a time into a single reused
/// histogram, touching only the bins the node's rows fall into (a bitmap gives them in
/// order): no allocation per node, and a small node costs its rows, not the bin count.
/// Random forests use it, drawing new features at every split (so no sibling shares them).
pub fn best_split_one_feature_at_a_time(
    binned: &BinnedMatrix,
    stats: &RowStats,
    rows: &[u32],
    features: &[usize],
    total: &[f64],
    rules: &SplitRules,
) -> Option<Split> {
    let width = stats.width();
    let k = stats.k;
    let mut bins = vec![0.0; 256 * width];
    let mut scratch = Scratch::new(width);
    let mut best: Option<Split> = None;
    for &f in features {
        let column = binned.column(f);
        let mut touched = [0u64; 4];
        if k == 1 {
            // One gradient per row (regression, binary classes): the common case, unrolled.
            let (gradients, hessians) = (&stats.gradients[..], &stats.hessians[..]);
            for &r in rows {
                let r = r as usize;
                let b = usize::from(column[r]);
                let bit = 1u64 << (b % 64);
                let entry = &mut bins[b * 3..b * 3 + 3];
                if touched[b / 64] & bit == 0 {
                    touched[b / 64] |= bit;
                    entry[0] = gradients[r];
                    entry[1] = hessians[r];
                    entry[2] = 1.0;
                } else {
                    entry[0] += gradients[r];
                    entry[1] += hessians[r];
                    entry[2] += 1.0;
                }
            }
        } else {
            for &r in rows {
                let r = r as usize;
                let b = usize::from(column[r]);
                let entry = &mut bins[b * width..(b + 1) * width];
                if touched[b / 64] & (1 << (b % 64)) == 0 {
                    touched[b / 64] |= 1 << (b % 64);
                    entry.fill(0.0);
                }
                let row = &stats.gradients[r * k..(r + 1) * k];
                for (s, g) in entry[..k].iter_mut().zip(row) {
                    *s += g;
                }
                entry[k] += stats.hessians[r];
                entry[k + 1] += 1.0;
            }
        }
        let missing_bin = usize::from(binned.missing_bin(f));
        let missing_seen = touched[missing_bin / 64] & (1 << (missing_bin % 64)) != 0;
        let missing: &[f64] = if missing_seen {
            &bins[missing_bin * width..(missing_bin + 1) * width]
        } else {
            &scratch.zero
        };
        let missing = missing.to_vec();
        let in_order = (0..missing_bin)
            .filter(|&b| touched[b / 64] & (1 << (b % 64)) != 0)
            .map(|b| (b as u8, &bins[b * width..(b + 1) * width]));
        if let Some(split) = scan_feature(f, in_order, &missing, total, rules, &mut scratch) {
            best = Some(match best {
                Some(b) => better(b, split),
                None => split,
            });
        }
    }
    best
}
