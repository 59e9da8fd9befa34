//! Decision trees stored as flat arrays: the part of every tree model's file that holds its
//! trees, and walking them. The `boosting` and `forest` modules say how the leaves' values
//! become a prediction.
//!
//! ```json
//! "trees": {
//!   "outputs": 1,
//!   "roots": [0, 3],
//!   "feature": [2, -1, -1, 0, -1, -1],
//!   "threshold": [0.5, 0, 0, 31.5, 0, 0],
//!   "missingLeft": [true, false, false, false, false, false],
//!   "child": [1, 0, 1, 4, 2, 3],
//!   "values": [-0.12, 0.31, 0.05, -0.2]
//! }
//! ```
//!
//! Every array but `roots` and `values` has one entry per node, the nodes of all trees one
//! after another; tree `t` starts at node `roots[t]`. A node with `feature` ≥ 0 is a split: a
//! row whose value of that feature is `<= threshold` goes to node `child`, a larger one to
//! node `child + 1`, and a missing (NaN) one to `child` when `missingLeft`, else `child + 1`.
//! A node with `feature` -1 is a leaf: its `outputs` values are
//! `values[child · outputs .. (child + 1) · outputs]`. Thresholds are 32-bit floats, as the
//! feature values the trainer reads; the chosen threshold lies between two neighbouring
//! training values, so no training value sits on it.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The trees of a model, struct-of-arrays (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trees {
    /// Values per leaf: 1 for a regressor, a binary classifier or one class of a boosted
    /// multiclass model; the class count for a forest's class-probability leaves.
    pub outputs: usize,
    /// The root node of each tree.
    pub roots: Vec<u32>,
    /// Per node: the index of the feature it splits on, or -1 for a leaf.
    pub feature: Vec<i32>,
    /// Per node: rows with a value `<=` this go to `child`, larger ones to `child + 1`.
    pub threshold: Vec<f32>,
    /// Per node: whether a missing value goes to `child` (else to `child + 1`).
    pub missing_left: Vec<bool>,
    /// Per node: a split's first child, or a leaf's index into `values` (in units of
    /// `outputs`).
    pub child: Vec<u32>,
    /// `outputs` values per leaf, leaves in the order `child` numbers them.
    pub values: Vec<f64>,
}

/// A leaf value or a split, as a tree builder hands nodes to [`Trees::push_tree`].
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Go to `left` when `value <= threshold` (or missing and `missing_left`), else `right`;
    /// both are indices into the same tree's node list.
    Split {
        /// Feature index.
        feature: usize,
        /// Upper bound of the left side.
        threshold: f32,
        /// Where a missing value goes.
        missing_left: bool,
        /// The left child's index in the tree's node list.
        left: usize,
        /// The right child's index in the tree's node list.
        right: usize,
    },
    /// A leaf and its `outputs` values.
    Leaf(Vec<f64>),
}

impl Trees {
    /// No trees yet, `outputs` values per leaf.
    pub fn new(outputs: usize) -> Trees {
        Trees {
            outputs,
            ..Trees::default()
        }
    }

    /// The number of trees.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Whether there are no trees.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Append one tree given as a node list whose first entry is the root. Children are
    /// renumbered so that a split's right child directly follows its left one.
    ///
    /// # Panics
    /// When a leaf does not hold `outputs` values or a child index is out of the list; both
    /// are bugs of the tree builder.
    pub fn push_tree(&mut self, nodes: &[Node]) {
        let base = self.feature.len();
        self.roots.push(to_u32(base));
        // Breadth-first, placing both children of a split next to each other.
        let mut order = vec![0usize];
        let mut new_index = vec![usize::MAX; nodes.len()];
        new_index[0] = 0;
        let mut next = 0;
        while next < order.len() {
            if let Node::Split { left, right, .. } = nodes[order[next]] {
                new_index[left] = order.len();
                order.push(left);
                new_index[right] = order.len();
                order.push(right);
            }
            next += 1;
        }
        for &old in &order {
            match &nodes[old] {
                Node::Split {
                    feature,
                    threshold,
                    missing_left,
                    left,
                    ..
                } => {
                    self.feature
                        .push(i32::try_from(*feature).unwrap_or(i32::MAX));
                    self.threshold.push(*threshold);
                    self.missing_left.push(*missing_left);
                    self.child.push(to_u32(base + new_index[*left]));
                }
                Node::Leaf(values) => {
                    assert_eq!(
                        values.len(),
                        self.outputs,
                        "leaf with the wrong output count"
                    );
                    self.feature.push(-1);
                    self.threshold.push(0.0);
                    self.missing_left.push(false);
                    self.child.push(to_u32(self.values.len() / self.outputs));
                    self.values.extend_from_slice(values);
                }
            }
        }
    }

    /// Keep only the first `count` trees.
    pub fn truncate(&mut self, count: usize) {
        if count >= self.len() {
            return;
        }
        let nodes = self.roots[count] as usize;
        self.roots.truncate(count);
        let leaves = (0..nodes).filter(|&n| self.feature[n] < 0).count();
        self.feature.truncate(nodes);
        self.threshold.truncate(nodes);
        self.missing_left.truncate(nodes);
        self.child.truncate(nodes);
        self.values.truncate(leaves * self.outputs);
    }

    /// The values of the leaf that row `x` (feature values in model order) reaches in tree
    /// `tree`.
    #[inline]
    pub fn leaf_values(&self, tree: usize, x: impl Fn(usize) -> f32) -> &[f64] {
        let mut node = self.roots[tree] as usize;
        loop {
            let feature = self.feature[node];
            let child = self.child[node] as usize;
            if feature < 0 {
                return &self.values[child * self.outputs..(child + 1) * self.outputs];
            }
            let value = x(feature as usize);
            let left = if value.is_nan() {
                self.missing_left[node]
            } else {
                value <= self.threshold[node]
            };
            node = if left { child } else { child + 1 };
        }
    }

    /// For every row of `x` (rows × features, any layout), add the leaf values it reaches in
    /// `trees` into `out` (rows × columns, row-major): tree `t` adds its one value to column
    /// `column(t)`, or, when its leaves hold `columns` values, one to each column. Rows are
    /// split over the current rayon pool.
    pub fn accumulate(
        &self,
        x: ArrayView2<'_, f32>,
        trees: std::ops::Range<usize>,
        column: impl Fn(usize) -> usize + Sync,
        out: &mut Array2<f64>,
    ) {
        const BLOCK: usize = 256;
        let columns = out.ncols().max(1);
        let outputs = self.outputs;
        let mut standard = out.as_standard_layout().into_owned();
        if let Some(data) = standard.as_slice_mut() {
            data.par_chunks_mut(BLOCK * columns)
                .enumerate()
                .for_each(|(block, chunk)| {
                    for (offset, row_out) in chunk.chunks_mut(columns).enumerate() {
                        let row = x.row(block * BLOCK + offset);
                        for tree in trees.clone() {
                            let values = self.leaf_values(tree, |f| row[f]);
                            if outputs == 1 {
                                row_out[column(tree)] += values[0];
                            } else {
                                for (o, v) in row_out.iter_mut().zip(values) {
                                    *o += v;
                                }
                            }
                        }
                    }
                });
        }
        *out = standard;
    }

    /// Check that the arrays fit together: one entry per node, children and leaf indices in
    /// range and every tree's nodes reachable only from its root, features below `features`.
    pub fn check(&self, features: usize) -> Result<(), String> {
        let nodes = self.feature.len();
        if self.outputs == 0 {
            return Err("trees.outputs must be at least 1".into());
        }
        if [
            self.threshold.len(),
            self.missing_left.len(),
            self.child.len(),
        ]
        .iter()
        .any(|&len| len != nodes)
        {
            return Err(format!(
                "trees.feature has {nodes} nodes; threshold, missingLeft and child must too"
            ));
        }
        if !self.values.len().is_multiple_of(self.outputs) {
            return Err("trees.values is not a whole number of leaves".into());
        }
        let leaves = self.values.len() / self.outputs;
        let mut ends: Vec<usize> = self.roots.iter().map(|&r| r as usize).skip(1).collect();
        ends.push(nodes);
        for (tree, (&root, &end)) in self.roots.iter().zip(&ends).enumerate() {
            let root = root as usize;
            if root >= end {
                return Err(format!("tree {tree} has no nodes"));
            }
            for node in root..end {
                let child = self.child[node] as usize;
                let feature = self.feature[node];
                if feature < 0 {
                    if feature != -1 || child >= leaves {
                        return Err(format!("leaf {node} points outside trees.values"));
                    }
                } else if feature as usize >= features
                    || child <= node
                    || child + 1 >= end
                    || !self.threshold[node].is_finite()
                {
                    // Children after their parent: walking a tree always ends.
                    return Err(format!(
                        "split {node} of tree {tree}: feature, threshold or children out of range"
                    ));
                }
            }
        }
        if self.values.iter().any(|v| !v.is_finite()) {
            return Err("trees.values holds a non-finite value".into());
        }
        Ok(())
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ndarray::array;

    fn stump(feature: usize, threshold: f32, left: f64, right: f64) -> Vec<Node> {
        vec![
            Node::Split {
                feature,
                threshold,
                missing_left: false,
                left: 2,
                right: 1,
            },
            Node::Leaf(vec![right]),
            Node::Leaf(vec![left]),
        ]
    }

    #[test]
    fn rows_reach_the_leaf_their_values_choose() {
        let mut trees = Trees::new(1);
        trees.push_tree(&stump(0, 1.5, -1.0, 1.0));
        trees.push_tree(&[Node::Leaf(vec![10.0])]);
        trees.check(1).unwrap();
        assert_eq!(trees.leaf_values(0, |_| 1.5), [-1.0]);
        assert_eq!(trees.leaf_values(0, |_| 1.6), [1.0]);
        assert_eq!(trees.leaf_values(0, |_| f32::NAN), [1.0]);
        let x = array![[0.0f32], [2.0]];
        let mut out = Array2::zeros((2, 1));
        trees.accumulate(x.view(), 0..2, |_| 0, &mut out);
        assert_eq!(out, array![[9.0], [11.0]]);
        trees.truncate(1);
        assert_eq!((trees.len(), trees.values.len()), (1, 2));
        trees.check(1).unwrap();
    }

    #[test]
    fn malformed_trees_are_refused() {
        let mut trees = Trees::new(1);
        trees.push_tree(&stump(0, 1.5, -1.0, 1.0));
        let mut loop_back = trees.clone();
        loop_back.child[0] = 0;
        assert!(loop_back.check(1).is_err());
        assert!(trees.check(0).is_err(), "feature 0 of a model with none");
        let mut short = trees.clone();
        short.threshold.pop();
        assert!(short.check(1).is_err());
    }
}
