#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Oracle: scikit-learn 1.9.1 on `tests/data/diabetes_train.csv`, features standardized with
//! `StandardScaler` (as the trainer does), `tol=1e-10`. The figures were printed by
//! `Ridge(alpha=1.0)`, `Ridge(alpha=0.0)`, `Lasso(alpha=300/353)`,
//! `ElasticNet(alpha=20/353, l1_ratio=0.5)` and, unscaled-but-not-centred,
//! `Ridge(alpha=1.0, fit_intercept=False)` on `X / std`.

use std::cell::RefCell;

use super::*;
use crate::data::{ColumnSelection, parse_csv};
use crate::progress::NoProgress;
use crate::solver::tests::dataset_path;
use crate::targets;
use kubetrain_model::Scaler;

const INTERCEPT: f64 = 151.606_232_294_617_57;
const RIDGE_1: [f64; 10] = [
    -1.651_670_585_2,
    -11.513_703_928_8,
    27.561_017_252_1,
    14.278_120_217_9,
    -24.430_161_551_6,
    9.951_487_220_7,
    -1.926_500_874_8,
    7.203_091_649_8,
    33.090_097_841_1,
    2.197_333_619_1,
];
const OLS: [f64; 10] = [
    -1.721_464_892_6,
    -11.585_694_040_2,
    27.510_691_737_5,
    14.371_208_550_5,
    -31.221_391_444,
    15.265_182_067_9,
    1.167_946_324_8,
    8.184_468_129_4,
    35.837_533_135_6,
    2.123_231_284_1,
];
const LASSO_300: [f64; 10] = [
    -0.339_756_682_4,
    -9.994_291_230_3,
    27.556_433_303_6,
    12.852_142_064_3,
    -7.865_544_737_9,
    0.0,
    -10.749_730_610_6,
    0.424_681_316_3,
    27.624_745_900_7,
    1.461_363_439_4,
];
const ENET_20_HALF: [f64; 10] = [
    -1.354_394_812_7,
    -11.041_662_590_5,
    27.225_120_981_3,
    13.901_922_934,
    -9.027_192_652_4,
    -1.906_231_937_8,
    -8.622_881_680_1,
    5.331_810_077_4,
    26.342_599_474_6,
    2.544_634_121,
];
const RIDGE_1_NO_INTERCEPT: [f64; 10] = [
    2.556_843_818,
    -4.677_057_949_5,
    27.348_474_926_6,
    9.918_121_981_4,
    3.124_559_137_2,
    -22.327_187_342_8,
    -5.501_961_627_2,
    18.334_707_966_2,
    20.507_210_820_4,
    0.970_417_350_3,
];

fn diabetes(centre: bool) -> (ndarray::Array2<f32>, Vec<f64>) {
    let bytes = std::fs::read(dataset_path("diabetes_train.csv")).unwrap();
    let selection = ColumnSelection {
        label: Some("target".into()),
        label_required: true,
        features: None,
    };
    let mut table = parse_csv(&bytes, &selection).unwrap();
    let mut scaler = Scaler::fit(table.features.view());
    if !centre {
        scaler.mean.iter_mut().for_each(|m| *m = 0.0);
    }
    scaler.transform(table.features.view_mut());
    let y = targets::numeric(table.labels.as_ref().unwrap()).unwrap();
    (table.features, y)
}

fn pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
}

fn params(l2_penalty: f64, l1_ratio: f64) -> LinearParams {
    LinearParams {
        l2_penalty,
        l1_ratio,
        fit_intercept: true,
        max_iterations: 100_000,
        tolerance: 1e-10,
    }
}

fn solve(params: &LinearParams) -> LinearFit {
    let (x, y) = diabetes(params.fit_intercept);
    fit(x.view(), &y, params, &pool(), &NoProgress).unwrap()
}

/// Within `tolerance` of the reference, relative to the largest coefficient (the features
/// were read as f32, as the trainer reads them, on both sides).
fn assert_close(got: &[f64], want: &[f64], tolerance: f64) {
    let largest = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (j, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tolerance * largest,
            "coefficient {j}: {g} vs scikit-learn's {w}\n got {got:?}"
        );
    }
}

#[test]
fn ridge_is_solved_exactly_as_scikit_learn_solves_it() {
    let fit = solve(&params(1.0, 0.0));
    assert!(fit.converged && fit.iterations == 1, "{fit:?}");
    assert_close(&fit.coefficients, &RIDGE_1, 1e-6);
    assert!((fit.intercept - INTERCEPT).abs() < 1e-9);
    let ols = solve(&params(0.0, 0.0));
    assert_close(&ols.coefficients, &OLS, 1e-6);
}

#[test]
fn lasso_and_elastic_net_match_scikit_learn_and_zero_what_it_zeroes() {
    let lasso = solve(&params(300.0, 1.0));
    assert!(lasso.converged, "{}", lasso.stop_reason);
    assert_close(&lasso.coefficients, &LASSO_300, 1e-4);
    assert_eq!(lasso.coefficients[5], 0.0, "{:?}", lasso.coefficients);
    let enet = solve(&params(20.0, 0.5));
    assert!(enet.converged, "{}", enet.stop_reason);
    assert_close(&enet.coefficients, &ENET_20_HALF, 1e-4);
}

#[test]
fn without_an_intercept_the_features_are_scaled_not_centred() {
    let fit = solve(&LinearParams {
        fit_intercept: false,
        ..params(1.0, 0.0)
    });
    assert_eq!(fit.intercept, 0.0);
    assert_close(&fit.coefficients, &RIDGE_1_NO_INTERCEPT, 1e-6);
}

#[test]
fn coordinate_descent_reaches_the_exact_ridge_solution() {
    let (x, y) = diabetes(true);
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let centred: Vec<f64> = y.iter().map(|v| v - mean).collect();
    let system = Normal::build(x.view(), &centred);
    let exact = system.solve_ridge(1.0).unwrap();
    let descent = system.coordinate_descent(
        0.0,
        1.0,
        &params(1.0, 0.0),
        Instant::now(),
        y.len(),
        &NoProgress,
    );
    assert!(descent.iterations > 1 && descent.converged, "{descent:?}");
    assert_close(&descent.coefficients, &exact, 1e-8);
    assert_close(&exact, &RIDGE_1, 1e-6);
}

#[test]
fn singular_systems_fall_back_to_descent_and_constant_features_stay_zero() {
    // A constant column standardizes to zeros: XᵀX is singular without a penalty.
    let (x, y) = diabetes(true);
    let mut wider = ndarray::Array2::<f32>::zeros((x.nrows(), x.ncols() + 1));
    for (j, column) in x.columns().into_iter().enumerate() {
        wider.column_mut(j).assign(&column);
    }
    let fit = fit(wider.view(), &y, &params(0.0, 0.0), &pool(), &NoProgress).unwrap();
    assert!(fit.iterations > 1 && fit.converged, "{}", fit.stop_reason);
    assert_eq!(fit.coefficients[10], 0.0);
    assert_close(&fit.coefficients[..10], &OLS, 1e-4);
    // At the default tolerance the stopping rule still leaves it near the solution.
    let default = LinearParams {
        tolerance: 1e-4,
        max_iterations: 1000,
        ..params(0.0, 0.0)
    };
    let fit = super::fit(wider.view(), &y, &default, &pool(), &NoProgress).unwrap();
    assert!(fit.converged, "{}", fit.stop_reason);
    assert_close(&fit.coefficients[..10], &OLS, 1e-2);
}

#[test]
fn progress_reports_end_with_the_last_pass() {
    struct Seen(RefCell<Vec<Iteration>>);
    impl ProgressSink for Seen {
        fn report(&self, progress: &Iteration) {
            self.0.borrow_mut().push(progress.clone());
        }
    }
    let seen = Seen(RefCell::new(Vec::new()));
    let (x, y) = diabetes(true);
    let fit = fit(x.view(), &y, &params(20.0, 0.5), &pool(), &seen).unwrap();
    let seen = seen.0.into_inner();
    let last = seen.last().unwrap();
    assert_eq!(last.iteration, fit.iterations);
    assert_eq!(last.total, 100_000);
    assert!((last.loss - fit.objective / y.len() as f64).abs() < 1e-9);
}
