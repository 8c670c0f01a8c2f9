//! Small dense linear algebra for the fits' normal equations (3×3), without allocation.

/// The inverse of a symmetric 3×3 matrix, or `None` when it is singular to working precision.
pub(crate) fn invert3(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let c00 = m[1][1] * m[2][2] - m[1][2] * m[2][1];
    let c01 = m[1][2] * m[2][0] - m[1][0] * m[2][2];
    let c02 = m[1][0] * m[2][1] - m[1][1] * m[2][0];
    let det = m[0][0] * c00 + m[0][1] * c01 + m[0][2] * c02;
    let scale = m[0][0].abs().max(1e-300) * m[1][1].abs().max(1e-300) * m[2][2].abs().max(1e-300);
    if !det.is_finite() || det.abs() <= 1e-14 * scale {
        return None;
    }
    let inv_det = 1.0 / det;
    Some([
        [
            c00 * inv_det,
            (m[0][2] * m[2][1] - m[0][1] * m[2][2]) * inv_det,
            (m[0][1] * m[1][2] - m[0][2] * m[1][1]) * inv_det,
        ],
        [
            c01 * inv_det,
            (m[0][0] * m[2][2] - m[0][2] * m[2][0]) * inv_det,
            (m[0][2] * m[1][0] - m[0][0] * m[1][2]) * inv_det,
        ],
        [
            c02 * inv_det,
            (m[0][1] * m[2][0] - m[0][0] * m[2][1]) * inv_det,
            (m[0][0] * m[1][1] - m[0][1] * m[1][0]) * inv_det,
        ],
    ])
}

/// Solves `m·x = b` for a symmetric 3×3 `m`.
pub(crate) fn solve3(m: &[[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let inv = invert3(m)?;
    Some([
        inv[0][0] * b[0] + inv[0][1] * b[1] + inv[0][2] * b[2],
        inv[1][0] * b[0] + inv[1][1] * b[1] + inv[1][2] * b[2],
        inv[2][0] * b[0] + inv[2][1] * b[1] + inv[2][2] * b[2],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_times_matrix_is_identity() {
        let m = [[4.0, 1.0, 0.5], [1.0, 3.0, -0.2], [0.5, -0.2, 2.0]];
        let inv = invert3(&m).unwrap();
        for (i, row) in m.iter().enumerate() {
            for (j, expected) in [1.0, 0.0, 0.0]
                .iter()
                .cycle()
                .skip(3 - i)
                .take(3)
                .enumerate()
            {
                let p: f64 = (0..3).map(|k| row[k] * inv[k][j]).sum();
                assert!((p - expected).abs() < 1e-12, "({i},{j})");
            }
        }
        let x = solve3(&m, [1.0, 2.0, 3.0]).unwrap();
        for (row, b) in m.iter().zip([1.0, 2.0, 3.0]) {
            let got: f64 = row.iter().zip(&x).map(|(m, x)| m * x).sum();
            assert!((got - b).abs() < 1e-12);
        }
    }

    #[test]
    fn singular_matrix_has_no_inverse() {
        let m = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 6.0, 9.0]];
        assert!(invert3(&m).is_none());
        assert!(invert3(&[[f64::NAN, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).is_none());
    }
}
