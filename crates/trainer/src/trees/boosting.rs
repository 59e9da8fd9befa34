//! Gradient boosting (Friedman 2001, with second-order leaf values as in XGBoost and
//! LightGBM): start every row at the base score, then each iteration fits one tree per score
//! to the loss's gradient and hessian at the current scores and adds the tree, shrunk by the
//! learning rate.
//!
//! | objective | scores | base score | gradient, hessian of row `i` |
//! |---|---|---|---|
//! | binary | 1 | `ln(p / (1 − p))`, `p` the positive share | `pᵢ − yᵢ`, `pᵢ(1 − pᵢ)` |
//! | multiclass (`K`) | `K` | `ln(share of class k)` | `pᵢₖ − [yᵢ = k]`, `K/(K−1) · pᵢₖ(1 − pᵢₖ)` |
//! | regression | 1 | the mean target | `sᵢ − yᵢ`, 1 |
//!
//! (`p` = sigmoid or softmax of the scores; the multiclass hessian factor is LightGBM's.)
//! Deterministic for a seed: the row and feature draws come from it, and every sum is
//! taken in a fixed order whatever the thread count.

use std::time::Instant;

use kubetrain_api::GradientBoostedTrees as Params;
use kubetrain_model::boosting::Objective;
use kubetrain_model::trees::Trees;
use kubetrain_model::{sigmoid, softmax_in_place};
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::binning::BinnedMatrix;
use super::grower::{GrowParams, grow};
use super::histogram::{RowStats, SplitRules};
use super::{Target, TreeFit, sub_seed};
use crate::progress::{Iteration, ProgressSink};

/// LightGBM's `min_sum_hessian_in_leaf` default.
const MIN_CHILD_WEIGHT: f64 = 1e-3;
/// Probabilities are kept in `[EPS, 1 − EPS]` in the log loss (scikit-learn's `log_loss`).
const EPS: f64 = 1e-15;

/// A boosted model's parts: objective, base scores and trees.
#[derive(Debug, Clone)]
pub struct Boosted {
    /// The loss fit.
    pub objective: Objective,
    /// Starting score per output.
    pub base_score: Vec<f64>,
    /// How it went, and the trees.
    pub fit: TreeFit,
}

/// Fit boosted trees to `x` (rows × features) and `target`, watching `validation` for early
/// stopping and progress.
pub fn boost(
    x: ArrayView2<'_, f32>,
    target: &Target<'_>,
    validation: Option<(ArrayView2<'_, f32>, &Target<'_>)>,
    params: &Params,
    pool: &rayon::ThreadPool,
    sink: &dyn ProgressSink,
) -> Boosted {
    let started = Instant::now();
    let binned = pool.install(|| BinnedMatrix::fit(x, params.max_bins as usize));
    let objective = match target {
        Target::Classes { classes: 2, .. } => Objective::Binary,
        Target::Classes { .. } => Objective::Multiclass,
        Target::Values(_) => Objective::Regression,
    };
    let k = objective.scores(target.classes());
    let n = binned.rows;
    let base_score = base_score(objective, target, k);
    let mut scores = vec![0.0; n * k];
    for row in scores.chunks_mut(k) {
        row.copy_from_slice(&base_score);
    }
    let mut valid_scores = validation.map(|(vx, _)| {
        let mut s = Array2::zeros((vx.nrows(), k));
        for mut row in s.rows_mut() {
            row.assign(&ndarray::ArrayView1::from(&base_score[..]));
        }
        s
    });

    let all_features: Vec<usize> = (0..binned.features()).collect();
    let per_tree = ((params.feature_fraction * all_features.len() as f64).round() as usize)
        .clamp(1, all_features.len().max(1));
    let grow_params = GrowParams {
        max_leaves: params.max_leaves as usize,
        max_depth: params.max_depth.map(|d| d as usize),
        rules: SplitRules {
            min_samples_leaf: params.min_samples_leaf as usize,
            min_child_weight: MIN_CHILD_WEIGHT,
            l2_penalty: params.l2_penalty,
        },
        features_per_split: None,
        leaf_scale: params.learning_rate,
    };
    let sample_size = ((params.subsample * n as f64).round() as usize).clamp(1, n.max(1));
    let seed = params.seed.unsigned_abs();
    let total = u64::from(params.max_iterations);

    let mut trees = Trees::new(1);
    let mut gains_per_tree: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut history = Vec::new();
    let (mut best, mut best_loss) = (0usize, f64::INFINITY);
    let mut stopped_early = false;
    for iteration in 0..params.max_iterations as usize {
        let mut rng = ChaCha8Rng::seed_from_u64(sub_seed(seed, iteration as u64));
        let rows: Vec<u32> = if sample_size < n {
            let mut picked: Vec<u32> = index::sample(&mut rng, n, sample_size)
                .into_iter()
                .map(|r| r as u32)
                .collect();
            picked.sort_unstable();
            picked
        } else {
            (0..n as u32).collect()
        };
        let stats = pool.install(|| gradients(objective, target, &scores, k));
        for (class, stats) in stats.into_iter().enumerate() {
            let features: Vec<usize> = if per_tree < all_features.len() {
                let mut f: Vec<usize> = index::sample(&mut rng, all_features.len(), per_tree)
                    .into_iter()
                    .collect();
                f.sort_unstable();
                f
            } else {
                all_features.clone()
            };
            let tree = pool.install(|| {
                let tree = grow(
                    &binned,
                    &stats,
                    rows.clone(),
                    &features,
                    &grow_params,
                    &mut rng,
                );
                scores.par_chunks_mut(k).enumerate().for_each(|(r, s)| {
                    s[class] += tree.leaf_values(&binned, r)[0];
                });
                tree
            });
            trees.push_tree(&tree.nodes);
            gains_per_tree.push(tree.gains);
            if let (Some(vs), Some((vx, _))) = (valid_scores.as_mut(), validation) {
                let t = trees.len() - 1;
                pool.install(|| trees.accumulate(vx, t..t + 1, |_| class, vs));
            }
        }
        let loss = mean_loss(
            objective,
            target,
            ArrayView2::from_shape((n, k), &scores).ok(),
        );
        let validation_loss = match (&valid_scores, validation) {
            (Some(vs), Some((_, vt))) => Some(mean_loss(objective, vt, Some(vs.view()))),
            _ => None,
        };
        history.push((loss, validation_loss));
        sink.report(&Iteration {
            iteration: iteration as u64 + 1,
            total,
            loss,
            validation_loss,
            elapsed: started.elapsed(),
        });
        let watched = validation_loss.unwrap_or(loss);
        if watched < best_loss {
            (best, best_loss) = (iteration + 1, watched);
        }
        if let (Some(rounds), Some(_)) = (params.early_stopping_rounds, validation_loss)
            && iteration + 1 - best >= rounds as usize
        {
            stopped_early = true;
            break;
        }
    }
    let kept = if params.early_stopping_rounds.is_some() && validation.is_some() {
        best
    } else {
        history.len()
    };
    trees.truncate(kept * k);
    gains_per_tree.truncate(kept * k);
    Boosted {
        objective,
        base_score,
        fit: TreeFit::new(
            trees,
            &gains_per_tree,
            binned.features(),
            history,
            kept,
            stopped_early,
        ),
    }
}

fn base_score(objective: Objective, target: &Target<'_>, k: usize) -> Vec<f64> {
    match (objective, target) {
        (Objective::Regression, Target::Values(y)) => {
            vec![y.iter().sum::<f64>() / y.len().max(1) as f64]
        }
        (_, Target::Classes { y, classes }) => {
            let mut counts = vec![0usize; *classes];
            for &c in *y {
                counts[c] += 1;
            }
            let share = |c: usize| (counts[c] as f64 / y.len().max(1) as f64).clamp(EPS, 1.0 - EPS);
            if k == 1 {
                vec![(share(1) / (1.0 - share(1))).ln()]
            } else {
                (0..k).map(|c| share(c).ln()).collect()
            }
        }
        _ => vec![0.0; k],
    }
}

/// Per score, the gradient and hessian of every row at `scores` (rows × k, row-major).
fn gradients(objective: Objective, target: &Target<'_>, scores: &[f64], k: usize) -> Vec<RowStats> {
    let n = scores.len() / k.max(1);
    let mut g = vec![vec![0.0; n]; k];
    let mut h = vec![vec![0.0; n]; k];
    match (objective, target) {
        (Objective::Regression, Target::Values(y)) => {
            g[0].par_iter_mut()
                .zip(scores.par_iter().zip(y.par_iter()))
                .for_each(|(g, (s, y))| *g = s - y);
            h[0].fill(1.0);
        }
        (Objective::Binary, Target::Classes { y, .. }) => {
            let (g0, h0) = (&mut g[0], &mut h[0]);
            g0.par_iter_mut()
                .zip(h0.par_iter_mut())
                .enumerate()
                .for_each(|(i, (g, h))| {
                    let p = sigmoid(scores[i]);
                    *g = p - if y[i] == 1 { 1.0 } else { 0.0 };
                    *h = (p * (1.0 - p)).max(1e-16);
                });
        }
        (Objective::Multiclass, Target::Classes { y, .. }) => {
            let factor = k as f64 / (k as f64 - 1.0);
            let rows: Vec<(Vec<f64>, Vec<f64>)> = scores
                .par_chunks(k)
                .zip(y.par_iter())
                .map(|(s, &truth)| {
                    let mut p = s.to_vec();
                    softmax_in_place(&mut p);
                    let gs = p
                        .iter()
                        .enumerate()
                        .map(|(c, p)| p - if c == truth { 1.0 } else { 0.0 })
                        .collect();
                    let hs = p
                        .iter()
                        .map(|p| (factor * p * (1.0 - p)).max(1e-16))
                        .collect();
                    (gs, hs)
                })
                .collect();
            for (i, (gs, hs)) in rows.into_iter().enumerate() {
                for c in 0..k {
                    g[c][i] = gs[c];
                    h[c][i] = hs[c];
                }
            }
        }
        // The objective follows from the target: no other pairs occur.
        _ => {}
    }
    g.into_iter()
        .zip(h)
        .map(|(gradients, hessians)| RowStats {
            k: 1,
            gradients,
            hessians,
        })
        .collect()
}

/// The mean loss of raw `scores` (rows × k): log loss for classes, half the squared error
/// for values.
pub fn mean_loss(
    objective: Objective,
    target: &Target<'_>,
    scores: Option<ArrayView2<'_, f64>>,
) -> f64 {
    let Some(scores) = scores else {
        return f64::NAN;
    };
    let rows = scores.nrows().max(1) as f64;
    let total: f64 = match (objective, target) {
        (Objective::Binary, Target::Classes { y, .. }) => scores
            .column(0)
            .iter()
            .zip(y.iter())
            .map(|(&s, &c)| {
                let p = sigmoid(s).clamp(EPS, 1.0 - EPS);
                -if c == 1 { p.ln() } else { (1.0 - p).ln() }
            })
            .sum(),
        (Objective::Multiclass, Target::Classes { y, .. }) => scores
            .rows()
            .into_iter()
            .zip(y.iter())
            .map(|(row, &c)| {
                let mut p = row.to_vec();
                softmax_in_place(&mut p);
                -p[c].clamp(EPS, 1.0 - EPS).ln()
            })
            .sum(),
        (_, Target::Values(y)) => scores
            .column(0)
            .iter()
            .zip(y.iter())
            .map(|(s, y)| 0.5 * (s - y) * (s - y))
            .sum(),
        _ => f64::NAN,
    };
    total / rows
}
