//! Weighted least-squares polynomial fits y = Σ βⱼ xʲ with the coefficient covariance.
//!
//! The weights are relative (1/variance up to a common factor): the covariance is scaled by the
//! weighted residual variance σ̂² = Σwᵢrᵢ²/(n − p), so it stays honest when the variance model
//! behind the weights is right in shape but off in size. The coefficients then carry n − p degrees
//! of freedom. Used for the calibration line and the EP06 quadratic; not a general regression tool.

use nalgebra::{DMatrix, DVector};

/// A weighted polynomial fit.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightedPolyFit {
    /// β₀, β₁, … (lowest power first).
    pub coefficients: Vec<f64>,
    /// Covariance of the coefficients, row-major p×p, scaled by the residual variance.
    pub covariance: Vec<Vec<f64>>,
    /// Weighted residual variance σ̂² = Σwᵢrᵢ²/(n − p) (1 when the weights are exact 1/variances
    /// and the model holds).
    pub residual_variance: f64,
    /// Residual degrees of freedom, n − p.
    pub df: usize,
}

impl WeightedPolyFit {
    /// Standard error of coefficient `j`.
    pub fn se(&self, j: usize) -> f64 {
        self.covariance[j][j].sqrt()
    }

    /// The fitted polynomial at `x`.
    pub fn predict(&self, x: f64) -> f64 {
        self.coefficients
            .iter()
            .rev()
            .fold(0.0, |acc, &beta| acc * x + beta)
    }
}

/// Fits a polynomial of `degree` to (x, y) with relative weights `w`. `None` when there are not
/// more points than coefficients, a weight is not positive and finite, or the design is singular
/// (too few distinct x).
pub fn fit_polynomial(x: &[f64], y: &[f64], w: &[f64], degree: usize) -> Option<WeightedPolyFit> {
    let n = x.len();
    let p = degree + 1;
    if y.len() != n || w.len() != n || n <= p {
        return None;
    }
    if w.iter().any(|&wi| !(wi.is_finite() && wi > 0.0))
        || x.iter().chain(y).any(|v| !v.is_finite())
    {
        return None;
    }
    let design = DMatrix::from_fn(n, p, |i, j| x[i].powi(j as i32));
    let weights = DVector::from_column_slice(w);
    let observations = DVector::from_column_slice(y);
    let weighted_design = DMatrix::from_fn(n, p, |i, j| design[(i, j)] * weights[i]);
    let normal = design.transpose() * &weighted_design;
    let inverse = normal.clone().try_inverse()?;
    let rhs = weighted_design.transpose() * &observations;
    let beta = &inverse * rhs;
    let residuals = &observations - &design * &beta;
    let chi2: f64 = (0..n).map(|i| weights[i] * residuals[i].powi(2)).sum();
    let df = n - p;
    let residual_variance = chi2 / df as f64;
    let covariance = (0..p)
        .map(|r| {
            (0..p)
                .map(|c| inverse[(r, c)] * residual_variance)
                .collect()
        })
        .collect();
    Some(WeightedPolyFit {
        coefficients: beta.iter().copied().collect(),
        covariance,
        residual_variance,
        df,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_line_is_recovered_with_zero_residual() {
        let x = [0.0, 1.0, 2.0, 3.0];
        let y: Vec<f64> = x.iter().map(|v| 2.0 + 0.5 * v).collect();
        let fit = fit_polynomial(&x, &y, &[1.0; 4], 1).expect("fit");
        assert!((fit.coefficients[0] - 2.0).abs() < 1e-12);
        assert!((fit.coefficients[1] - 0.5).abs() < 1e-12);
        assert!(fit.residual_variance < 1e-20);
    }

    #[test]
    fn unweighted_line_matches_textbook_ols() {
        // x = 0,1,2,3,4; y = 1,3,2,5,4. OLS: slope = Sxy/Sxx = 8/10, intercept = 3 − 0.8·2 = 1.4.
        // Residuals −0.4, 0.8, −1.0, 1.2, −0.6: RSS = 3.6, σ̂² = 3.6/3, se(slope) = √(σ̂²/Sxx),
        // se(b) = √(σ̂²(1/5 + 4/10)), cov(b, s) = −x̄·σ̂²/Sxx.
        let x = [0.0, 1.0, 2.0, 3.0, 4.0];
        let y = [1.0, 3.0, 2.0, 5.0, 4.0];
        let fit = fit_polynomial(&x, &y, &[1.0; 5], 1).expect("fit");
        let s2 = 3.6 / 3.0;
        assert!((fit.coefficients[1] - 0.8).abs() < 1e-12);
        assert!((fit.coefficients[0] - 1.4).abs() < 1e-12);
        assert!((fit.se(1) - (s2 / 10.0_f64).sqrt()).abs() < 1e-12);
        assert!((fit.se(0) - (s2 * 0.6_f64).sqrt()).abs() < 1e-12);
        assert!((fit.covariance[0][1] - (-2.0 * s2 / 10.0)).abs() < 1e-12);
        assert_eq!(fit.df, 3);
        assert!((fit.predict(10.0) - 9.4).abs() < 1e-12);
    }

    #[test]
    fn weights_only_matter_relatively() {
        let x = [0.0, 1.0, 2.0, 3.0, 4.0];
        let y = [1.0, 3.0, 2.0, 5.0, 4.0];
        let w = [1.0, 2.0, 3.0, 2.0, 1.0];
        let w10: Vec<f64> = w.iter().map(|v| v * 10.0).collect();
        let a = fit_polynomial(&x, &y, &w, 1).expect("fit");
        let b = fit_polynomial(&x, &y, &w10, 1).expect("fit");
        assert!((a.coefficients[1] - b.coefficients[1]).abs() < 1e-12);
        assert!((a.se(1) - b.se(1)).abs() < 1e-12);
    }

    #[test]
    fn degenerate_inputs_give_none() {
        assert!(fit_polynomial(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0], &[1.0; 3], 1).is_none());
        assert!(fit_polynomial(&[1.0, 2.0], &[1.0, 2.0], &[1.0; 2], 1).is_none());
        assert!(fit_polynomial(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], &[1.0, 0.0, 1.0], 1).is_none());
    }
}
