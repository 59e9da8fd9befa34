//! Link functions: scores to probabilities (shared by the solver's objective and prediction).

/// Softmax of a row of scores, in place, with the row maximum subtracted first.
pub fn softmax_in_place(z: &mut [f64]) {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in z.iter_mut() {
        *v /= sum;
    }
}

/// `1 / (1 + e^-s)` without overflow.
pub fn sigmoid(s: f64) -> f64 {
    if s >= 0.0 {
        1.0 / (1.0 + (-s).exp())
    } else {
        let e = s.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stay_finite_at_the_extremes() {
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
        let mut z = [1000.0, 0.0, -1000.0];
        softmax_in_place(&mut z);
        assert_eq!(z, [1.0, 0.0, 0.0]);
    }
}
