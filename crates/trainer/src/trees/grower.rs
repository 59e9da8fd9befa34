//! Growing one tree, leaf-wise: start from a single leaf holding the rows; repeatedly split
//! the leaf whose best split lowers the loss most, until `max_leaves` leaves exist or no
//! leaf can be split (LightGBM's leaf-wise growth; with no leaf limit this grows the full
//! tree a random forest uses).
//!
//! Two ways to find a leaf's best split: over every feature of the tree, with a histogram
//! per leaf where a split's larger child's histogram is its parent's minus the smaller
//! child's (boosting); or over a fresh draw of features at each split (random forests), one
//! feature at a time into a reused histogram that touches only the bins the leaf's rows fall
//! into, so a small leaf costs its rows, not the bin count.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use kubetrain_model::trees::Node;
use rand::Rng;
use rand::seq::index;

use super::binning::BinnedMatrix;
use super::histogram::{Histogram, RowStats, Split, SplitRules, best_split_one_feature_at_a_time};

/// Memory for the histograms of leaves waiting to be split (LightGBM's
/// `histogram_pool_size`): beyond it a leaf's histogram is dropped and rebuilt from its rows
/// when the leaf is split, which costs time, not correctness.
const HISTOGRAM_BUDGET_BYTES: usize = 512 << 20;

/// How a tree grows.
#[derive(Debug, Clone, Copy)]
pub struct GrowParams {
    /// Most leaves; `usize::MAX` for no limit.
    pub max_leaves: usize,
    /// Most levels below the root.
    pub max_depth: Option<usize>,
    /// Limits on a split's children and the leaf-value penalty.
    pub rules: SplitRules,
    /// Features drawn afresh at each split; `None`: every feature of the tree at every split.
    pub features_per_split: Option<usize>,
    /// Leaf values are `−G / (H + λ)` times this (the learning rate for boosting).
    pub leaf_scale: f64,
}

/// A grown tree: its nodes, root first, with each split's bin so training rows can be
/// routed by their bins, and the gain of every split.
#[derive(Debug, Clone)]
pub struct GrownTree {
    /// The nodes as the model stores them.
    pub nodes: Vec<Node>,
    /// Per node, the split's last left bin (unused for leaves).
    pub split_bins: Vec<u8>,
    /// Per split: the feature and the loss reduction.
    pub gains: Vec<(usize, f64)>,
}

impl GrownTree {
    /// Add `offset` to every leaf value (a tree fit to centred targets).
    pub fn shift_leaves(&mut self, offset: f64) {
        if offset == 0.0 {
            return;
        }
        for node in &mut self.nodes {
            if let Node::Leaf(values) = node {
                values.iter_mut().for_each(|v| *v += offset);
            }
        }
    }

    /// The values of the leaf training row `row` reaches.
    pub fn leaf_values(&self, binned: &BinnedMatrix, row: usize) -> &[f64] {
        let mut node = 0;
        loop {
            match &self.nodes[node] {
                Node::Leaf(values) => return values,
                Node::Split {
                    feature,
                    missing_left,
                    left,
                    right,
                    ..
                } => {
                    let bin = binned.column(*feature)[row];
                    let go_left = if bin == binned.missing_bin(*feature) {
                        *missing_left
                    } else {
                        bin <= self.split_bins[node]
                    };
                    node = if go_left { *left } else { *right };
                }
            }
        }
    }
}

/// A leaf while the tree grows.
struct Leaf {
    /// Its rows: `rows[start..end]` of the grower's buffer.
    start: usize,
    end: usize,
    depth: usize,
    /// Summed statistics of its rows.
    total: Vec<f64>,
    /// Its histogram, kept (boosting) until it is split.
    histogram: Option<Histogram>,
    /// Its index in the node list.
    node: usize,
}

/// A splittable leaf in the queue: the best first, ties to the older leaf.
struct Candidate {
    gain: f64,
    leaf: usize,
    split: Split,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.gain
            .total_cmp(&other.gain)
            .then_with(|| other.leaf.cmp(&self.leaf))
    }
}

/// Grow one tree on `rows` (indices into `binned` and `stats`; repeats allowed, as a
/// bootstrap sample has them) splitting only on `features`.
pub fn grow(
    binned: &BinnedMatrix,
    stats: &RowStats,
    rows: Vec<u32>,
    features: &[usize],
    params: &GrowParams,
    rng: &mut impl Rng,
) -> GrownTree {
    let one = features.len().max(1) * binned.max_bins_with_missing() * stats.width() * 8;
    grow_with_budget(
        binned,
        stats,
        rows,
        features,
        params,
        rng,
        HISTOGRAM_BUDGET_BYTES / one,
    )
}

/// [`grow`], keeping at most `histograms` leaf histograms at once (0: each leaf's histogram is
/// rebuilt from its rows when it is split).
pub fn grow_with_budget(
    binned: &BinnedMatrix,
    stats: &RowStats,
    mut rows: Vec<u32>,
    features: &[usize],
    params: &GrowParams,
    rng: &mut impl Rng,
    histograms: usize,
) -> GrownTree {
    let mut grower = Grower {
        binned,
        stats,
        features,
        params,
        nodes: vec![Node::Leaf(Vec::new())],
        split_bins: vec![0],
        gains: Vec::new(),
        leaves: Vec::new(),
        scratch: Vec::new(),
        kept_histograms: 0,
        histogram_budget: histograms,
    };
    let total = stats.total(&rows);
    let histogram = params
        .features_per_split
        .is_none()
        .then(|| Histogram::build(binned, stats, &rows, features));
    grower.leaves.push(Leaf {
        start: 0,
        end: rows.len(),
        depth: 0,
        total,
        histogram,
        node: 0,
    });
    let mut queue = BinaryHeap::new();
    grower.consider(0, &rows, rng, &mut queue);
    let mut leaf_count = 1;
    while leaf_count < params.max_leaves {
        let Some(candidate) = queue.pop() else { break };
        grower.split(candidate, &mut rows, rng, &mut queue);
        leaf_count += 1;
    }
    grower.finish()
}

struct Grower<'a> {
    binned: &'a BinnedMatrix,
    stats: &'a RowStats,
    features: &'a [usize],
    params: &'a GrowParams,
    nodes: Vec<Node>,
    split_bins: Vec<u8>,
    gains: Vec<(usize, f64)>,
    leaves: Vec<Leaf>,
    scratch: Vec<u32>,
    /// Leaves waiting to be split that hold their histogram.
    kept_histograms: usize,
    /// The most histograms kept at once (0: rebuild every one from rows).
    histogram_budget: usize,
}

impl Grower<'_> {
    /// Find leaf `id`'s best split and queue it, or drop its histogram when it has none.
    fn consider(
        &mut self,
        id: usize,
        rows: &[u32],
        rng: &mut impl Rng,
        queue: &mut BinaryHeap<Candidate>,
    ) {
        let leaf = &self.leaves[id];
        let n = leaf.end - leaf.start;
        let rules = &self.params.rules;
        let too_deep = self.params.max_depth.is_some_and(|d| leaf.depth >= d);
        let split = if too_deep || n < 2 * rules.min_samples_leaf.max(1) || self.features.is_empty()
        {
            None
        } else if let Some(count) = self.params.features_per_split {
            let drawn: Vec<usize> = index::sample(rng, self.features.len(), count)
                .into_iter()
                .map(|i| self.features[i])
                .collect();
            let node_rows = &rows[leaf.start..leaf.end];
            best_split_one_feature_at_a_time(
                self.binned,
                self.stats,
                node_rows,
                &drawn,
                &leaf.total,
                rules,
            )
        } else {
            let built;
            let histogram = match &leaf.histogram {
                Some(h) => h,
                None => {
                    // Dropped to stay within the memory budget: rebuilt from the rows.
                    let node_rows = &rows[leaf.start..leaf.end];
                    built = Histogram::build(self.binned, self.stats, node_rows, self.features);
                    &built
                }
            };
            histogram.best_split(self.binned, &leaf.total, rules)
        };
        let keep = split.is_some() && self.kept_histograms < self.histogram_budget;
        if !keep {
            self.leaves[id].histogram = None;
        } else if self.leaves[id].histogram.is_some() {
            self.kept_histograms += 1;
        }
        if let Some(split) = split {
            queue.push(Candidate {
                gain: split.gain,
                leaf: id,
                split,
            });
        }
    }

    /// Split a queued leaf into two new leaves and consider each.
    fn split(
        &mut self,
        candidate: Candidate,
        rows: &mut [u32],
        rng: &mut impl Rng,
        queue: &mut BinaryHeap<Candidate>,
    ) {
        let Candidate {
            leaf: id, split, ..
        } = candidate;
        let (start, end, depth, node) = {
            let l = &self.leaves[id];
            (l.start, l.end, l.depth, l.node)
        };
        // Stable partition: left rows first, in their order, then the right ones.
        let column = self.binned.column(split.feature);
        let missing_bin = self.binned.missing_bin(split.feature);
        self.scratch.clear();
        let mut write = start;
        for i in start..end {
            let r = rows[i];
            let bin = column[r as usize];
            let left = if bin == missing_bin {
                split.missing_left
            } else {
                bin <= split.bin
            };
            if left {
                rows[write] = r;
                write += 1;
            } else {
                self.scratch.push(r);
            }
        }
        rows[write..end].copy_from_slice(&self.scratch);
        let right_total: Vec<f64> = self.leaves[id]
            .total
            .iter()
            .zip(&split.left)
            .map(|(t, l)| t - l)
            .collect();

        let (left_node, right_node) = (self.nodes.len(), self.nodes.len() + 1);
        self.nodes.push(Node::Leaf(Vec::new()));
        self.nodes.push(Node::Leaf(Vec::new()));
        self.split_bins.extend([0, 0]);
        self.nodes[node] = Node::Split {
            feature: split.feature,
            threshold: self.binned.threshold(split.feature, split.bin),
            missing_left: split.missing_left,
            left: left_node,
            right: right_node,
        };
        self.split_bins[node] = split.bin;
        self.gains.push((split.feature, split.gain));

        // Histograms: build the smaller child's, subtract it from the parent's.
        let parent = self.leaves[id].histogram.take();
        if parent.is_some() {
            self.kept_histograms -= 1;
        }
        let left_small = write - start <= end - write;
        let (left_histogram, right_histogram) = match parent {
            Some(parent) => {
                let small_rows = if left_small {
                    &rows[start..write]
                } else {
                    &rows[write..end]
                };
                let small = Histogram::build(self.binned, self.stats, small_rows, self.features);
                let large = parent.subtract(&small);
                if left_small {
                    (Some(small), Some(large))
                } else {
                    (Some(large), Some(small))
                }
            }
            None => (None, None),
        };
        let left_id = self.leaves.len();
        self.leaves.push(Leaf {
            start,
            end: write,
            depth: depth + 1,
            total: split.left,
            histogram: left_histogram,
            node: left_node,
        });
        self.leaves.push(Leaf {
            start: write,
            end,
            depth: depth + 1,
            total: right_total,
            histogram: right_histogram,
            node: right_node,
        });
        self.leaves[id].end = self.leaves[id].start; // no longer a leaf
        self.consider(left_id, rows, rng, queue);
        self.consider(left_id + 1, rows, rng, queue);
    }

    /// Give every remaining leaf its value.
    fn finish(mut self) -> GrownTree {
        let k = self.stats.k;
        let l2 = self.params.rules.l2_penalty;
        let scale = self.params.leaf_scale;
        for leaf in &self.leaves {
            if let Node::Leaf(values) = &mut self.nodes[leaf.node] {
                let h = leaf.total[k] + l2;
                *values = leaf.total[..k]
                    .iter()
                    .map(|g| if h > 0.0 { -g / h * scale } else { 0.0 })
                    .collect();
            }
        }
        GrownTree {
            nodes: self.nodes,
            split_bins: self.split_bins,
            gains: self.gains,
        }
    }
}
