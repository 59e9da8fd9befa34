//! Random forests (Breiman 2001): each tree grows on a bootstrap sample of the rows with a
//! fresh draw of `maxFeatures` features at every split, to pure leaves unless `maxDepth`
//! or `minSamplesLeaf` stop it; the forest averages the trees' leaf values. Classification
//! trees fit one-hot targets (their split gain is the Gini impurity decrease, their leaves
//! the class frequencies); regression trees the target (squared-error decrease, mean).
//!
//! Trees grow in parallel, in batches of the thread count; each tree's draws come from its
//! own seed, so the forest depends on the seed only, not on the thread count.

use std::time::Instant;

use kubetrain_api::RandomForest as Params;
use kubetrain_model::boosting::Objective;
use kubetrain_model::trees::Trees;
use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::binning::BinnedMatrix;
use super::boosting::mean_loss;
use super::grower::{GrowParams, GrownTree, grow};
use super::histogram::{RowStats, SplitRules};
use super::{Target, TreeFit, sub_seed};
use crate::progress::{Iteration, ProgressSink};

/// Bins per feature (scikit-learn's exact splitter has none; 255 is LightGBM's default).
const MAX_BINS: usize = 255;
/// The training loss in progress reports is computed on at most this many rows.
const LOSS_ROWS: usize = 20_000;

/// Fit a forest of `params.num_trees` trees, drawing `max_features` features per split.
pub fn forest(
    x: ArrayView2<'_, f32>,
    target: &Target<'_>,
    validation: Option<(ArrayView2<'_, f32>, &Target<'_>)>,
    params: &Params,
    max_features: usize,
    pool: &rayon::ThreadPool,
    sink: &dyn ProgressSink,
) -> TreeFit {
    let started = Instant::now();
    let binned = pool.install(|| BinnedMatrix::fit(x, MAX_BINS));
    let n = binned.rows;
    let outputs = target.classes().max(1);
    let mean_target = match target {
        Target::Values(y) => y.iter().sum::<f64>() / y.len().max(1) as f64,
        Target::Classes { .. } => 0.0,
    };
    let stats = match target {
        Target::Classes { y, classes } => {
            let mut gradients = vec![0.0; n * classes];
            for (i, &c) in y.iter().enumerate() {
                gradients[i * classes + c] = -1.0;
            }
            RowStats {
                k: *classes,
                gradients,
                hessians: vec![1.0; n],
            }
        }
        // Centred, so that split gains are not lost in the rounding of a large mean.
        Target::Values(y) => RowStats {
            k: 1,
            gradients: y.iter().map(|v| mean_target - v).collect(),
            hessians: vec![1.0; n],
        },
    };
    let grow_params = GrowParams {
        max_leaves: usize::MAX,
        max_depth: params.max_depth.map(|d| d as usize),
        rules: SplitRules {
            min_samples_leaf: params.min_samples_leaf as usize,
            min_child_weight: 0.0,
            l2_penalty: 0.0,
        },
        features_per_split: Some(max_features.clamp(1, binned.features().max(1))),
        leaf_scale: 1.0,
    };
    let features: Vec<usize> = (0..binned.features()).collect();
    let seed = params.seed.unsigned_abs();
    let objective = match target {
        Target::Classes { .. } => Objective::Multiclass,
        Target::Values(_) => Objective::Regression,
    };

    // Running sums of the trees' outputs on a sample of training rows and on validation.
    let step = n.div_ceil(LOSS_ROWS).max(1);
    let loss_rows: Vec<usize> = (0..n).step_by(step).collect();
    let loss_target = subset(target, &loss_rows);
    let mut train_sum = Array2::<f64>::zeros((loss_rows.len(), outputs));
    let mut valid_sum = validation.map(|(vx, _)| Array2::<f64>::zeros((vx.nrows(), outputs)));

    let mut trees = Trees::new(outputs);
    let mut gains: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut history = Vec::new();
    let total = params.num_trees as usize;
    let batch = pool.current_num_threads().max(1);
    let mut done = 0;
    while done < total {
        let grown: Vec<GrownTree> = pool.install(|| {
            (done..(done + batch).min(total))
                .into_par_iter()
                .map(|t| {
                    let mut rng = ChaCha8Rng::seed_from_u64(sub_seed(seed, t as u64));
                    let rows: Vec<u32> = if params.bootstrap {
                        let mut drawn: Vec<u32> =
                            (0..n).map(|_| rng.random_range(0..n as u32)).collect();
                        drawn.sort_unstable();
                        drawn
                    } else {
                        (0..n as u32).collect()
                    };
                    let mut tree = grow(&binned, &stats, rows, &features, &grow_params, &mut rng);
                    tree.shift_leaves(mean_target);
                    tree
                })
                .collect()
        });
        for tree in grown {
            for (i, &r) in loss_rows.iter().enumerate() {
                for (s, v) in train_sum
                    .row_mut(i)
                    .iter_mut()
                    .zip(tree.leaf_values(&binned, r))
                {
                    *s += v;
                }
            }
            trees.push_tree(&tree.nodes);
            gains.push(tree.gains);
            done += 1;
            if let (Some(vs), Some((vx, _))) = (valid_sum.as_mut(), validation) {
                pool.install(|| trees.accumulate(vx, done - 1..done, |_| 0, vs));
            }
            let loss = forest_loss(objective, &loss_target.as_target(), &train_sum, done);
            let validation_loss = match (&valid_sum, validation) {
                (Some(vs), Some((_, vt))) => Some(forest_loss(objective, vt, vs, done)),
                _ => None,
            };
            history.push((loss, validation_loss));
            sink.report(&Iteration {
                iteration: done as u64,
                total: total as u64,
                loss,
                validation_loss,
                elapsed: started.elapsed(),
            });
        }
    }
    TreeFit::new(trees, &gains, binned.features(), history, total, false)
}

/// The mean loss of the forest of the first `trees` trees whose summed outputs are `sum`:
/// log loss of the mean class frequencies, or half the squared error of the mean value.
fn forest_loss(objective: Objective, target: &Target<'_>, sum: &Array2<f64>, trees: usize) -> f64 {
    let mean = sum / trees as f64;
    match objective {
        // Log-probabilities are the scores whose softmax gives the probabilities back.
        Objective::Multiclass => {
            let scores = mean.mapv(|p| p.clamp(1e-15, 1.0).ln());
            mean_loss(Objective::Multiclass, target, Some(scores.view()))
        }
        _ => mean_loss(objective, target, Some(mean.view())),
    }
}

/// The target of some rows, owned.
enum Subset {
    Classes(Vec<usize>, usize),
    Values(Vec<f64>),
}

impl Subset {
    fn as_target(&self) -> Target<'_> {
        match self {
            Subset::Classes(y, classes) => Target::Classes {
                y,
                classes: *classes,
            },
            Subset::Values(y) => Target::Values(y),
        }
    }
}

fn subset(target: &Target<'_>, rows: &[usize]) -> Subset {
    match target {
        Target::Classes { y, classes } => {
            Subset::Classes(rows.iter().map(|&r| y[r]).collect(), *classes)
        }
        Target::Values(y) => Subset::Values(rows.iter().map(|&r| y[r]).collect()),
    }
}
