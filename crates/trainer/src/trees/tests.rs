#![allow(clippy::unwrap_used, clippy::expect_used)]
use kubetrain_model::trees::Node;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::binning::BinnedMatrix;
use super::grower::{GrowParams, GrownTree, grow};
use super::histogram::{Histogram, RowStats, SplitRules, score};

fn rules(min_samples_leaf: usize) -> SplitRules {
    SplitRules {
        min_samples_leaf,
        min_child_weight: 0.0,
        l2_penalty: 0.0,
    }
}

fn params(max_leaves: usize, max_depth: Option<usize>, min_samples_leaf: usize) -> GrowParams {
    GrowParams {
        max_leaves,
        max_depth,
        rules: rules(min_samples_leaf),
        features_per_split: None,
        leaf_scale: 1.0,
    }
}

/// Squared-error statistics (gradient −y, hessian 1) of targets `y`.
fn regression_stats(y: &[f64]) -> RowStats {
    RowStats {
        k: 1,
        gradients: y.iter().map(|v| -v).collect(),
        hessians: vec![1.0; y.len()],
    }
}

fn random_data(rows: usize, features: usize, seed: u64) -> (Array2<f32>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((rows, features), |_| rng.random_range(0..40) as f32 / 4.0);
    let y = (0..rows)
        .map(|r| f64::from(x[[r, 0]] * 2.0 - x[[r, 1]]) + rng.random::<f64>())
        .collect();
    (x, y)
}

fn depth(tree: &GrownTree, node: usize) -> usize {
    match tree.nodes[node] {
        Node::Leaf(_) => 0,
        Node::Split { left, right, .. } => 1 + depth(tree, left).max(depth(tree, right)),
    }
}

fn leaves(tree: &GrownTree) -> usize {
    tree.nodes
        .iter()
        .filter(|n| matches!(n, Node::Leaf(_)))
        .count()
}

#[test]
fn the_best_split_is_the_one_an_exhaustive_search_finds() {
    for seed in 0..5 {
        let (x, y) = random_data(300, 4, seed);
        let binned = BinnedMatrix::fit(x.view(), 255);
        let stats = regression_stats(&y);
        let rows: Vec<u32> = (0..300).collect();
        let features = [0, 1, 2, 3];
        let total = stats.total(&rows);
        let found = Histogram::build(&binned, &stats, &rows, &features)
            .best_split(&binned, &total, &rules(5))
            .unwrap();
        // Every threshold between two distinct values of every feature, scored directly.
        let mut best = f64::NEG_INFINITY;
        for f in features {
            let mut values: Vec<f32> = x.column(f).to_vec();
            values.sort_by(f32::total_cmp);
            values.dedup();
            for t in values {
                let left: Vec<u32> = rows
                    .iter()
                    .copied()
                    .filter(|&r| x[[r as usize, f]] <= t)
                    .collect();
                let right: Vec<u32> = rows
                    .iter()
                    .copied()
                    .filter(|&r| x[[r as usize, f]] > t)
                    .collect();
                if left.len() < 5 || right.len() < 5 {
                    continue;
                }
                let gain = score(&stats.total(&left), 0.0) + score(&stats.total(&right), 0.0)
                    - score(&total, 0.0);
                best = best.max(gain);
            }
        }
        assert!(
            (found.gain - best).abs() <= 1e-9 * best.abs(),
            "seed {seed}: {} vs {best}",
            found.gain
        );
    }
}

#[test]
fn a_sibling_histogram_by_subtraction_equals_one_built_from_its_rows() {
    let (x, y) = random_data(500, 3, 7);
    let binned = BinnedMatrix::fit(x.view(), 16);
    let stats = regression_stats(&y);
    let all: Vec<u32> = (0..500).collect();
    let (left, right): (Vec<u32>, Vec<u32>) = all.iter().partition(|&&r| r % 3 == 0);
    let features = [0, 1, 2];
    let parent = Histogram::build(&binned, &stats, &all, &features);
    let small = Histogram::build(&binned, &stats, &left, &features);
    let direct = Histogram::build(&binned, &stats, &right, &features);
    let subtracted = parent.subtract(&small);
    let total = stats.total(&right);
    let a = subtracted.best_split(&binned, &total, &rules(1)).unwrap();
    let b = direct.best_split(&binned, &total, &rules(1)).unwrap();
    assert_eq!(
        (a.feature, a.bin, a.missing_left),
        (b.feature, b.bin, b.missing_left)
    );
    assert!((a.gain - b.gain).abs() < 1e-6 * b.gain);
}

#[test]
fn one_feature_at_a_time_finds_the_histograms_split() {
    let (x, y) = random_data(120, 3, 3);
    let binned = BinnedMatrix::fit(x.view(), 255);
    let stats = regression_stats(&y);
    let rows: Vec<u32> = (0..120).step_by(2).collect();
    let total = stats.total(&rows);
    let by_histogram = Histogram::build(&binned, &stats, &rows, &[0, 1, 2])
        .best_split(&binned, &total, &rules(3))
        .unwrap();
    let by_feature = super::histogram::best_split_one_feature_at_a_time(
        &binned,
        &stats,
        &rows,
        &[0, 1, 2],
        &total,
        &rules(3),
    )
    .unwrap();
    assert_eq!(
        (by_histogram.feature, by_histogram.bin),
        (by_feature.feature, by_feature.bin)
    );
}

#[test]
fn growth_obeys_leaves_depth_and_rows_per_leaf() {
    let (x, y) = random_data(2000, 5, 11);
    let binned = BinnedMatrix::fit(x.view(), 255);
    let stats = regression_stats(&y);
    let rows: Vec<u32> = (0..2000).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let features = [0, 1, 2, 3, 4];
    let tree = grow(
        &binned,
        &stats,
        rows.clone(),
        &features,
        &params(31, None, 20),
        &mut rng,
    );
    assert_eq!(leaves(&tree), 31);
    let shallow = grow(
        &binned,
        &stats,
        rows.clone(),
        &features,
        &params(31, Some(3), 20),
        &mut rng,
    );
    assert!(depth(&shallow, 0) <= 3 && leaves(&shallow) <= 8);
    let coarse = grow(
        &binned,
        &stats,
        rows.clone(),
        &features,
        &params(usize::MAX, None, 150),
        &mut rng,
    );
    let mut counts = vec![0usize; coarse.nodes.len()];
    for r in 0..2000 {
        let values = coarse.leaf_values(&binned, r);
        let leaf = coarse
            .nodes
            .iter()
            .position(|n| matches!(n, Node::Leaf(v) if std::ptr::eq(v.as_slice(), values)))
            .unwrap();
        counts[leaf] += 1;
    }
    for (node, n) in coarse.nodes.iter().zip(&counts) {
        if matches!(node, Node::Leaf(_)) {
            assert!(*n >= 150, "a leaf with {n} rows");
        }
    }
    // Leaf values are the mean target of their rows (gradient −y, hessian 1).
    let mean: f64 = y.iter().sum::<f64>() / 2000.0;
    let stump = grow(
        &binned,
        &stats,
        rows,
        &features,
        &params(1, None, 1),
        &mut rng,
    );
    assert!(matches!(&stump.nodes[0], Node::Leaf(v) if (v[0] - mean).abs() < 1e-9));
}

#[test]
fn missing_values_go_where_the_training_rows_with_them_belong() {
    // Feature 0 is missing exactly for the rows with a high target; feature 1 is noise.
    let rows = 400;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut x = Array2::<f32>::zeros((rows, 2));
    let mut y = vec![0.0; rows];
    for r in 0..rows {
        let high = r % 2 == 0;
        x[[r, 0]] = if high {
            f32::NAN
        } else {
            rng.random_range(0.0..1.0)
        };
        x[[r, 1]] = rng.random_range(0.0..1.0);
        y[r] = if high { 10.0 } else { 0.0 };
    }
    let binned = BinnedMatrix::fit(x.view(), 255);
    let stats = regression_stats(&y);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let tree = grow(
        &binned,
        &stats,
        (0..rows as u32).collect(),
        &[0, 1],
        &params(2, None, 1),
        &mut rng,
    );
    let mut trees = kubetrain_model::trees::Trees::new(1);
    trees.push_tree(&tree.nodes);
    assert_eq!(
        trees.leaf_values(0, |f| if f == 0 { f32::NAN } else { 0.5 }),
        [10.0]
    );
    assert_eq!(trees.leaf_values(0, |_| 0.5), [0.0]);
}

#[test]
fn per_split_feature_draws_use_only_the_trees_features() {
    let (x, y) = random_data(1000, 6, 2);
    let binned = BinnedMatrix::fit(x.view(), 255);
    let stats = regression_stats(&y);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let p = GrowParams {
        features_per_split: Some(2),
        ..params(usize::MAX, None, 1)
    };
    let tree = grow(
        &binned,
        &stats,
        (0..1000).collect(),
        &[1, 3, 5],
        &p,
        &mut rng,
    );
    assert!(tree.gains.len() > 10);
    assert!(tree.gains.iter().all(|(f, _)| [1, 3, 5].contains(f)));
}

#[test]
fn a_forest_splits_targets_whose_mean_dwarfs_their_spread() {
    // Timestamp-like targets: 1e6 plus 0 or 1 as feature 0 is low or high.
    let rows = 1000;
    let x = Array2::from_shape_fn((rows, 1), |(r, _)| r as f32 / rows as f32);
    let y: Vec<f64> = (0..rows)
        .map(|r| 1e6 + if r >= rows / 2 { 1.0 } else { 0.0 })
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let params = kubetrain_api::RandomForest {
        num_trees: 3,
        bootstrap: false,
        ..Default::default()
    };
    let fit = super::forest::forest(
        x.view(),
        &super::Target::Values(&y),
        None,
        &params,
        1,
        &pool,
        &crate::progress::NoProgress,
    );
    let low = fit.trees.leaf_values(0, |_| 0.1)[0];
    let high = fit.trees.leaf_values(0, |_| 0.9)[0];
    assert_eq!((low, high), (1e6, 1e6 + 1.0));
}

#[test]
fn a_small_histogram_budget_only_costs_time() {
    // With every histogram dropped and rebuilt from rows, the tree is the same.
    let (x, y) = random_data(3000, 4, 9);
    let binned = BinnedMatrix::fit(x.view(), 255);
    let stats = regression_stats(&y);
    let features = [0, 1, 2, 3];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let tree = grow(
        &binned,
        &stats,
        (0..3000).collect(),
        &features,
        &params(63, None, 5),
        &mut rng,
    );
    let rebuilt = super::grower::grow_with_budget(
        &binned,
        &stats,
        (0..3000).collect(),
        &features,
        &params(63, None, 5),
        &mut rng,
        0,
    );
    // The same splits; leaf values equal up to the rounding of sums taken in another order.
    assert_eq!(tree.nodes.len(), rebuilt.nodes.len());
    for (a, b) in tree.nodes.iter().zip(&rebuilt.nodes) {
        match (a, b) {
            (Node::Leaf(a), Node::Leaf(b)) => assert!((a[0] - b[0]).abs() < 1e-9, "{a:?} {b:?}"),
            _ => assert_eq!(a, b),
        }
    }
}
