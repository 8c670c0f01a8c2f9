//! The extended phase graph (EPG) of a CPMG echo train with an imperfect refocusing angle β.
//!
//! A miniature coil refocuses imperfectly: where the refocusing pulses turn the magnetisation by
//! β < 180°, part of it is stored along z and returns later as stimulated echoes, so the echoes no
//! longer fall as `exp(−t/T2)`: the second echo overshoots the first, the next few oscillate, and
//! the train settles onto a slower-than-T2 envelope. The EPG follows every coherence pathway: the
//! dephased transverse states `F⁺ₖ`, `F⁻ₖ` and the longitudinal states `Zₖ`, k the number of
//! half-echo dephasing units.
//!
//! One echo period is: relaxation and one dephasing step over TE/2, the refocusing pulse, another
//! TE/2 of relaxation and dephasing, and the echo is `F⁺₀`. With the CPMG condition (refocusing
//! about the axis of the magnetisation the ideal 90° excitation left) every state stays real, and
//! the pulse mixes each k as
//!
//! ```text
//! F⁺' = cos²(β/2)·F⁺ + sin²(β/2)·F⁻ + sin β·Z
//! F⁻' = sin²(β/2)·F⁺ + cos²(β/2)·F⁻ − sin β·Z
//! Z'  = −½ sin β·F⁺ + ½ sin β·F⁻ + cos β·Z
//! ```
//!
//! Longitudinal recovery towards equilibrium is left out (as in the EPG-T2 fitting of Prasloski et
//! al. and DECAES): what recovers during a train is not excited coherently and is removed by the
//! phase cycle. The highest states are dropped while everything dropped could change no echo by
//! more than a stated tolerance (the bound is in [`cpmg_echoes_into`]'s notes): [`EXACT_TOLERANCE`]
//! for the simulator, a small fraction of the noise for a fit, which keeps a fit's graph at the
//! pathways that matter rather than O(echoes²). The fits also take the echoes' exact derivatives
//! in R2 and β from the same pass ([`cpmg_echoes_with_derivatives`]).
//!
//! At β = 180° the recursion reduces to `exp(−k·TE/T2)` exactly; the first echo is
//! `sin²(β/2)·exp(−TE/T2)` for any β. The tests check both, and every echo against a brute-force
//! Bloch simulation of isochromats, an implementation independent of this one.
//!
//! ## Reference
//! J. Hennig, "Multiecho imaging sequences with low refocusing flip angles", J. Magn. Reson. 78
//! (1988) 397–407. M. Weigel, "Extended phase graphs: dephasing, RF pulses, and echoes — pure and
//! simple", J. Magn. Reson. Imaging 41 (2015) 266–295. T. Prasloski et al., "Applications of
//! stimulated echo correction to multicomponent T2 analysis", Magn. Reson. Med. 67 (2012)
//! 1803–1814.

use std::ops::{Add, Mul, Sub};

/// The error the simulator allows a train's echoes, per unit of transverse magnetisation: states
/// are dropped only while everything dropped could change no echo by more than this.
pub const EXACT_TOLERANCE: f64 = 1e-12;

/// The echo amplitudes `s₁ … s_n` of a CPMG of `echoes` echoes at spacing `te_s`, for unit
/// transverse magnetisation after the excitation, relaxation rates `r2_per_s` and `r1_per_s`, and
/// refocusing angle `beta_rad`, to within [`EXACT_TOLERANCE`]. Empty for no echoes; a non-finite
/// or negative input gives NaNs.
pub fn cpmg_echoes(
    echoes: usize,
    te_s: f64,
    r2_per_s: f64,
    r1_per_s: f64,
    beta_rad: f64,
) -> Vec<f64> {
    let mut out = vec![0.0; echoes];
    cpmg_echoes_into(
        te_s,
        r2_per_s,
        r1_per_s,
        beta_rad,
        EXACT_TOLERANCE,
        &mut out,
    );
    out
}

/// [`cpmg_echoes`] into `out` (one value per echo), every echo within `tolerance` of the full
/// graph's (per unit magnetisation; a fit passes a small fraction of its noise over its amplitude).
pub fn cpmg_echoes_into(
    te_s: f64,
    r2_per_s: f64,
    r1_per_s: f64,
    beta_rad: f64,
    tolerance: f64,
    out: &mut [f64],
) {
    if !valid(te_s, r2_per_s, r1_per_s, beta_rad) {
        out.fill(f64::NAN);
        return;
    }
    let (e2, c2, s2, sin_b, cos_b) = pulse_and_relaxation(te_s, r2_per_s, beta_rad);
    run(
        Coefficients {
            e2,
            e1: (-r1_per_s * te_s / 2.0).exp(),
            c2,
            s2,
            sin_b,
            cos_b,
        },
        tolerance,
        out.len(),
        |n, echo: f64| out[n] = echo,
    );
}

/// The echoes as [`cpmg_echoes_into`] does, each as `[value, ∂/∂R2 (per s⁻¹), ∂/∂β (per
/// radian)]`, the derivatives carried through the graph alongside every state (forward-mode
/// differentiation): no step size, and the derivatives of exactly the model the echoes are.
pub fn cpmg_echoes_with_derivatives(
    te_s: f64,
    r2_per_s: f64,
    r1_per_s: f64,
    beta_rad: f64,
    tolerance: f64,
    out: &mut [[f64; 3]],
) {
    if !valid(te_s, r2_per_s, r1_per_s, beta_rad) {
        out.fill([f64::NAN; 3]);
        return;
    }
    let (e2, c2, s2, sin_b, cos_b) = pulse_and_relaxation(te_s, r2_per_s, beta_rad);
    let half_sin_b = 0.5 * sin_b;
    run(
        Coefficients {
            e2: Dual::new(e2, -0.5 * te_s * e2, 0.0),
            e1: (-r1_per_s * te_s / 2.0).exp(),
            c2: Dual::new(c2, 0.0, -half_sin_b),
            s2: Dual::new(s2, 0.0, half_sin_b),
            sin_b: Dual::new(sin_b, 0.0, cos_b),
            cos_b: Dual::new(cos_b, 0.0, -sin_b),
        },
        tolerance,
        out.len(),
        |n, echo: Dual| out[n] = [echo.value, echo.d_r2, echo.d_beta],
    );
}

fn valid(te_s: f64, r2_per_s: f64, r1_per_s: f64, beta_rad: f64) -> bool {
    te_s > 0.0 && r2_per_s >= 0.0 && r1_per_s >= 0.0 && beta_rad.is_finite()
}

/// e2 over half an echo spacing, cos²(β/2), sin²(β/2), sin β, cos β.
fn pulse_and_relaxation(te_s: f64, r2_per_s: f64, beta_rad: f64) -> (f64, f64, f64, f64, f64) {
    let e2 = (-r2_per_s * te_s / 2.0).exp();
    let (half_sin, half_cos) = (beta_rad / 2.0).sin_cos();
    let (sin_b, cos_b) = beta_rad.sin_cos();
    (e2, half_cos * half_cos, half_sin * half_sin, sin_b, cos_b)
}

/// What a state amplitude of the graph is: a number, or a number with its derivatives.
trait Amplitude: Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> {
    const ZERO: Self;
    const ONE: Self;
    fn value(self) -> f64;
    fn scale(self, factor: f64) -> Self;
}

impl Amplitude for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn value(self) -> f64 {
        self
    }
    fn scale(self, factor: f64) -> Self {
        self * factor
    }
}

/// A value with its derivatives in R2 and β.
#[derive(Clone, Copy, Debug)]
struct Dual {
    value: f64,
    d_r2: f64,
    d_beta: f64,
}

impl Dual {
    fn new(value: f64, d_r2: f64, d_beta: f64) -> Self {
        Self {
            value,
            d_r2,
            d_beta,
        }
    }
}

impl Add for Dual {
    type Output = Dual;
    fn add(self, o: Dual) -> Dual {
        Dual::new(
            self.value + o.value,
            self.d_r2 + o.d_r2,
            self.d_beta + o.d_beta,
        )
    }
}

impl Sub for Dual {
    type Output = Dual;
    fn sub(self, o: Dual) -> Dual {
        Dual::new(
            self.value - o.value,
            self.d_r2 - o.d_r2,
            self.d_beta - o.d_beta,
        )
    }
}

impl Mul for Dual {
    type Output = Dual;
    fn mul(self, o: Dual) -> Dual {
        Dual::new(
            self.value * o.value,
            self.d_r2 * o.value + self.value * o.d_r2,
            self.d_beta * o.value + self.value * o.d_beta,
        )
    }
}

impl Amplitude for Dual {
    const ZERO: Self = Dual {
        value: 0.0,
        d_r2: 0.0,
        d_beta: 0.0,
    };
    const ONE: Self = Dual {
        value: 1.0,
        d_r2: 0.0,
        d_beta: 0.0,
    };
    fn value(self) -> f64 {
        self.value
    }
    fn scale(self, factor: f64) -> Self {
        Dual::new(
            self.value * factor,
            self.d_r2 * factor,
            self.d_beta * factor,
        )
    }
}

/// The graph's coefficients: relaxation over half an echo spacing (T2 and T1) and the pulse's
/// mixing (cos²(β/2), sin²(β/2), sin β, cos β).
struct Coefficients<A> {
    e2: A,
    e1: f64,
    c2: A,
    s2: A,
    sin_b: A,
    cos_b: A,
}

/// The recursion, handing echo n to `emit(n, echo)`.
///
/// **Which states are kept.** The pulse is an isometry of the magnetisation (for the real CPMG
/// states, of `Σ F⁺ₖ² + F⁻ₖ² + 2Zₖ²` summed over k ≥ 1 with F₀ and Z₀ once), dephasing moves states
/// without changing it, and relaxation only shrinks it; an echo is F₀, at most that norm. So a
/// set of states dropped now changes no later echo by more than its norm, and by linearity the
/// errors of all the drops add up at most to the sum of their norms. The highest states are
/// dropped while that sum stays within `tolerance`; when all the states together fit in what is
/// left of it, the remaining echoes are zero to within `tolerance` and the graph stops. A state
/// more than two dephasing units per remaining echo away from zero cannot come back before the
/// train ends and is dropped whatever its size.
fn run<A: Amplitude>(
    k: Coefficients<A>,
    tolerance: f64,
    echoes: usize,
    mut emit: impl FnMut(usize, A),
) {
    if echoes == 0 {
        return;
    }
    // States 0..=2·echoes + 1 are the most a train can reach.
    let size = 2 * echoes + 3;
    let mut fp = vec![A::ZERO; size];
    let mut fm = vec![A::ZERO; size];
    let mut z = vec![A::ZERO; size];
    fp[0] = A::ONE;
    fm[0] = A::ONE;
    let (half_sin_b, minus_sin_b) = (k.sin_b.scale(0.5), k.sin_b.scale(-1.0));
    let mut dropped = 0.0;
    // Highest index that may hold a non-negligible state.
    let mut top = 0usize;
    let relax_and_shift = |fp: &mut [A], fm: &mut [A], z: &mut [A], top: &mut usize| {
        let end = (*top + 1).min(fp.len() - 1);
        for i in 0..=end {
            fp[i] = fp[i] * k.e2;
            fm[i] = fm[i] * k.e2;
            z[i] = z[i].scale(k.e1);
        }
        // F⁺ moves up one state, F⁻ down one; F⁺₀ is the conjugate (here: the value) of F⁻₀.
        fp.copy_within(0..end, 1);
        fm.copy_within(1..=end, 0);
        fm[end] = A::ZERO;
        fp[0] = fm[0];
        *top = end;
    };
    let norm_squared = |fp: A, fm: A, z: A| {
        let (p, m, l) = (fp.value(), fm.value(), z.value());
        p * p + m * m + 2.0 * l * l
    };
    for n in 0..echoes {
        relax_and_shift(&mut fp, &mut fm, &mut z, &mut top);
        for i in 0..=top {
            let (p, m, l) = (fp[i], fm[i], z[i]);
            fp[i] = k.c2 * p + k.s2 * m + k.sin_b * l;
            fm[i] = k.s2 * p + k.c2 * m + minus_sin_b * l;
            z[i] = half_sin_b * (m - p) + k.cos_b * l;
        }
        relax_and_shift(&mut fp, &mut fm, &mut z, &mut top);
        emit(n, fp[0]);
        let horizon = 2 * (echoes - n - 1) + 1;
        while top > 0 {
            let norm = norm_squared(fp[top], fm[top], z[top]).sqrt();
            if top > horizon || dropped + norm <= tolerance {
                if top <= horizon {
                    dropped += norm;
                }
                fp[top] = A::ZERO;
                fm[top] = A::ZERO;
                z[top] = A::ZERO;
                top -= 1;
            } else {
                break;
            }
        }
        if top == 0 {
            // F₀ (held twice, as F⁺₀ and F⁻₀) and Z₀ are all that is left.
            let left = (norm_squared(fp[0], A::ZERO, z[0])).sqrt();
            if dropped + left <= tolerance {
                for rest in n + 1..echoes {
                    emit(rest, A::ZERO);
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn a_perfect_refocusing_angle_gives_a_pure_exponential() {
        let (te, r2) = (0.001, 1.0 / 0.08);
        let echoes = cpmg_echoes(500, te, r2, 1.0, PI);
        for (k, e) in echoes.iter().enumerate() {
            let want = (-(k as f64 + 1.0) * te * r2).exp();
            assert!((e - want).abs() < 1e-12, "echo {}: {e} vs {want}", k + 1);
        }
    }

    #[test]
    fn the_first_echo_is_sin_squared_half_beta_whatever_the_angle() {
        for degrees in [60.0, 90.0, 120.0, 150.0, 175.0] {
            let beta: f64 = degrees * PI / 180.0;
            let echoes = cpmg_echoes(3, 0.002, 10.0, 1.0, beta);
            let want = (beta / 2.0).sin().powi(2) * (-0.002 * 10.0f64).exp();
            assert!((echoes[0] - want).abs() < 1e-14, "{degrees}°");
        }
    }

    #[test]
    fn hand_worked_echoes_at_ninety_degrees_without_relaxation() {
        // Worked by hand for one isochromat of dephasing φ per half echo, averaged over φ: with
        // β = 90° the magnetisation along the CPMG axis at the echoes is ⟨cos²φ⟩ = 1/2, then
        // ⟨cos²φ·cos 2φ + sin²φ⟩ = 1/4 + 1/2 = 3/4, then ⟨cos⁴φ·cos 2φ⟩ + ⟨sin²φ cos²φ⟩ +
        // 2⟨sin⁴φ cos²φ⟩ + 2⟨sin²φ cos²φ⟩ = 1/4 + 1/8 + 1/8 + 1/4 = 3/4.
        let echoes = cpmg_echoes(3, 0.001, 0.0, 0.0, PI / 2.0);
        assert!((echoes[0] - 0.5).abs() < 1e-14, "{echoes:?}");
        assert!((echoes[1] - 0.75).abs() < 1e-14, "{echoes:?}");
        assert!((echoes[2] - 0.75).abs() < 1e-14, "{echoes:?}");
    }

    /// A brute-force Bloch simulation: `n` isochromats with dephasing angles spread evenly over a
    /// full turn per half echo, rotated, relaxed and summed; independent of the graph.
    fn bloch_echoes(echoes: usize, te: f64, r2: f64, r1: f64, beta: f64, n: usize) -> Vec<f64> {
        // Magnetisation after an ideal 90° about −y: along +x for every isochromat.
        let mut m: Vec<[f64; 3]> = vec![[1.0, 0.0, 0.0]; n];
        let e2 = (-r2 * te / 2.0).exp();
        let e1 = (-r1 * te / 2.0).exp();
        let (sb, cb) = beta.sin_cos();
        let precess = |m: &mut Vec<[f64; 3]>| {
            for (j, v) in m.iter_mut().enumerate() {
                let phi = 2.0 * PI * j as f64 / n as f64;
                let (s, c) = phi.sin_cos();
                let (x, y) = (v[0], v[1]);
                v[0] = e2 * (c * x - s * y);
                v[1] = e2 * (s * x + c * y);
                v[2] *= e1;
            }
        };
        let mut out = Vec::with_capacity(echoes);
        for _ in 0..echoes {
            precess(&mut m);
            // Refocusing about x (the CPMG axis: parallel to the excited magnetisation).
            for v in m.iter_mut() {
                let (y, z) = (v[1], v[2]);
                v[1] = cb * y - sb * z;
                v[2] = sb * y + cb * z;
            }
            precess(&mut m);
            out.push(m.iter().map(|v| v[0]).sum::<f64>() / n as f64);
        }
        out
    }

    #[test]
    fn every_echo_matches_a_bloch_simulation_of_isochromats() {
        // 128 isochromats resolve every pathway of up to 127 dephasing units exactly: 40 echoes
        // reach at most 80.
        for degrees in [100.0, 130.0, 150.0, 170.0] {
            let beta = degrees * PI / 180.0;
            let (te, r2, r1) = (0.004, 1.0 / 0.1, 1.0 / 0.5);
            let graph = cpmg_echoes(40, te, r2, r1, beta);
            let bloch = bloch_echoes(40, te, r2, r1, beta, 128);
            for (k, (g, b)) in graph.iter().zip(&bloch).enumerate() {
                assert!(
                    (g - b).abs() < 1e-12,
                    "{degrees}°, echo {}: {g} vs {b}",
                    k + 1
                );
            }
        }
    }

    #[test]
    fn a_tolerance_bounds_every_echo_and_the_derivatives_are_exact() {
        // The pruned graph within its tolerance of the full one, and its derivatives against
        // central differences of the full graph (step 1e-5: truncation ~1e-10).
        let (echoes, te, r1) = (400, 0.001, 1.0);
        for (degrees, t2) in [(120.0, 0.1), (150.0, 0.05), (170.0, 0.3), (179.0, 0.1)] {
            let (beta, r2) = (degrees * PI / 180.0, 1.0 / t2);
            let exact = cpmg_echoes(echoes, te, r2, r1, beta);
            for tolerance in [1e-3, 1e-6] {
                let mut pruned = vec![[0.0; 3]; echoes];
                cpmg_echoes_with_derivatives(te, r2, r1, beta, tolerance, &mut pruned);
                let worst = exact
                    .iter()
                    .zip(&pruned)
                    .map(|(a, b)| (a - b[0]).abs())
                    .fold(0.0, f64::max);
                assert!(worst <= tolerance, "{degrees}°, {tolerance}: {worst}");
            }
            let mut with_derivatives = vec![[0.0; 3]; echoes];
            cpmg_echoes_with_derivatives(te, r2, r1, beta, EXACT_TOLERANCE, &mut with_derivatives);
            let (hr, hb) = (1e-5 * r2, 1e-5);
            let up_r = cpmg_echoes(echoes, te, r2 + hr, r1, beta);
            let down_r = cpmg_echoes(echoes, te, r2 - hr, r1, beta);
            let up_b = cpmg_echoes(echoes, te, r2, r1, beta + hb);
            let down_b = cpmg_echoes(echoes, te, r2, r1, beta - hb);
            for i in 0..echoes {
                let fd_r = (up_r[i] - down_r[i]) / (2.0 * hr);
                let fd_b = (up_b[i] - down_b[i]) / (2.0 * hb);
                let [value, d_r2, d_beta] = with_derivatives[i];
                assert!((d_r2 - fd_r).abs() < 1e-8, "{degrees}° echo {i}: ∂R2");
                assert!((d_beta - fd_b).abs() < 1e-8, "{degrees}° echo {i}: ∂β");
                assert_eq!(value, exact[i]);
            }
        }
    }

    #[test]
    fn long_trains_stay_cheap_and_finite() {
        let echoes = cpmg_echoes(5_000, 0.0001, 20.0, 1.0, 120.0 * PI / 180.0);
        assert!(echoes.iter().all(|e| e.is_finite() && e.abs() <= 1.0));
        assert!(echoes[4_999].abs() < 1e-3 * echoes[0]);
        assert!(
            cpmg_echoes(5, -1.0, 1.0, 1.0, 1.0)
                .iter()
                .all(|e| e.is_nan())
        );
    }
}
