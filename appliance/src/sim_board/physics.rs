//! The simulated board's physics: a virtual magnet, coil, tube and receiver, and the evaluation of
//! one scan of a pulse program against them.
//!
//! ## Model (deliberately first-order; documented in `docs/frontend-protocol.md` §Simulated board)
//! - **Magnet**: f0 = γ·B0·(1 + k·(T − 25 °C)), γ = 42.577 MHz/T, B0 = 0.49 T, k = −0.10 %/K.
//!   Field inhomogeneity gives a Lorentzian line: the FID and each echo's flanks decay as
//!   exp(−|t − t_echo|/T2*).
//! - **Coil**: a rectangular pulse of length τ at amplitude a nutates at ω1 = (π/2)/p90 · a/a_default.
//!   With offset Δω the effective field is ωe = √(ω1² + Δω²): excitation leaves a transverse
//!   amplitude (ω1/ωe)·sin(ωe·τ) (signed, so nutation passes through zero at 180°). The coil's B1
//!   over the sample ([`VirtualCoil::b1_relative`]) scales ω1 for every pulse, so a coil at 5/6 of
//!   its nominal B1 turns the programmed 90° and 180° pulses by 75° and 150°. The echoes of a train
//!   of refocusing pulses follow the extended phase graph (`nmr_core::epg`) at the effective angle
//!   β = ωe·τ, stimulated echoes included, times the off-resonance share (ω1/ωe)²; at β = 180° this
//!   is the plain decay.
//! - **Echo and window**: a pulse refocuses static offsets, moving the echo centre to 2·t_pulse −
//!   t_echo. The signal is seen in the frame of the synthesiser, rotating at Δf = f0 − f_rf, so an
//!   acquire window [a, b] records the mean of exp(−|t − t_e|/T2*)·exp(i2πΔf(t − t_e)): a window
//!   centred on an echo loses amplitude ~ |sinc(πΔf·T_w)|; an FID window shows the phase ramp
//!   2πΔf·t that tuning measures. The receiver is blanked for the dead time after each pulse.
//! - **Tube**: spin density times the T2 decay from `nmr-core`'s simulator, evaluated at the window
//!   centre; longitudinal recovery with T1 between scans (partial saturation when TR is short).
//! - **Receiver**: gain in dB, a fixed phase, a DC offset per channel (cancelled by the phase cycle),
//!   Gaussian noise ∝ 1/√T_w (first-echo SNR 150 per scan with the defaults), 24-bit ADC clipping.

use nmr_core::simulate::{Component, CpmgSimulation};

use crate::frontend::pulse_program::{
    FLAG_ACQUIRE, FLAG_LOOP_END, FLAG_LOOP_START, FLAG_RF, FLAG_USE_P90, FLAG_USE_P180,
    ProgramEntry,
};
use crate::frontend::registers::TICK_NS;

/// The permanent magnet.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VirtualMagnet {
    /// Field at 25 °C, tesla.
    pub b0_t: f64,
    /// Gyromagnetic ratio of ¹H, Hz per tesla.
    pub gamma_hz_per_t: f64,
    /// Relative field change per kelvin (−0.001 = −0.10 %/K).
    pub field_coefficient_per_k: f64,
    /// Magnet temperature at t = 0.
    pub temp_c: f64,
    /// Linear temperature drift.
    pub drift_c_per_s: f64,
    /// Random-walk step size: standard deviation after one second.
    pub walk_c_per_sqrt_s: f64,
    /// Error of the temperature sensor (reading − truth).
    pub sensor_offset_c: f64,
    /// Inhomogeneous decay time of the FID and echo flanks.
    pub t2_star_s: f64,
}

impl Default for VirtualMagnet {
    fn default() -> Self {
        Self {
            b0_t: 0.49,
            gamma_hz_per_t: 42.577e6,
            field_coefficient_per_k: -0.001,
            temp_c: 25.0,
            drift_c_per_s: 0.0,
            walk_c_per_sqrt_s: 0.0002,
            sensor_offset_c: 0.05,
            t2_star_s: 1.0e-3,
        }
    }
}

impl VirtualMagnet {
    /// Larmor frequency at a magnet temperature.
    pub fn larmor_hz(&self, temp_c: f64) -> f64 {
        self.gamma_hz_per_t * self.b0_t * (1.0 + self.field_coefficient_per_k * (temp_c - 25.0))
    }
}

/// The RF coil.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VirtualCoil {
    /// 90° pulse length at the default transmit amplitude (0x8000).
    pub p90_s: f64,
    /// Coil temperature above the magnet's.
    pub temp_above_magnet_c: f64,
    /// B1 over the sample relative to the nominal B1 `p90_s` stands for (1 = perfect). Below one
    /// the refocusing pulses turn by less than 180° and the echoes carry stimulated echoes.
    #[serde(default = "unit_b1")]
    pub b1_relative: f64,
}

fn unit_b1() -> f64 {
    1.0
}

impl Default for VirtualCoil {
    fn default() -> Self {
        Self {
            p90_s: 10e-6,
            temp_above_magnet_c: 0.8,
            b1_relative: 1.0,
        }
    }
}

/// The sample tube.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VirtualTube {
    /// Proton density relative to water.
    pub spin_density: f64,
    /// Longitudinal relaxation time.
    pub t1_s: f64,
    /// T2 components; amplitudes are fractions of the spin density.
    pub components: Vec<Component>,
}

impl Default for VirtualTube {
    fn default() -> Self {
        Self {
            spin_density: 1.0,
            t1_s: 1.5,
            components: vec![Component {
                amplitude: 1.0,
                t2_s: 0.1,
            }],
        }
    }
}

impl VirtualTube {
    /// A tube with one T2 component.
    pub fn mono(t2_s: f64) -> Self {
        Self {
            components: vec![Component {
                amplitude: 1.0,
                t2_s,
            }],
            ..Self::default()
        }
    }

    /// Transverse decay at `t_s` after excitation (1 at t = 0 for amplitudes summing to 1).
    pub fn decay(&self, t_s: f64) -> f64 {
        let decay = CpmgSimulation {
            components: self.components.clone(),
            offset: 0.0,
            noise_sd: 0.0,
            phase_rad: 0.0,
            te_s: 1.0,
            echoes: 1,
            magnitude: false,
            refocusing: Default::default(),
        };
        self.spin_density * decay.ideal(t_s)
    }
}

/// The receiver chain.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VirtualReceiver {
    /// ADC counts for a unit signal at 0 dB gain.
    pub counts_per_unit: f64,
    /// Input noise (per channel) at 0 dB for a window of `reference_window_s`, in counts.
    pub noise_counts: f64,
    /// Window length the noise level is stated for.
    pub reference_window_s: f64,
    /// Receiver phase.
    pub phase_rad: f64,
    /// DC offset of the I and Q channels at 0 dB, counts.
    pub dc_offset_counts: (f64, f64),
    /// ADC full scale per scan, counts (24-bit signed).
    pub full_scale_counts: f64,
}

impl Default for VirtualReceiver {
    fn default() -> Self {
        Self {
            counts_per_unit: 1000.0,
            // First-echo SNR 150 per scan for a unit signal in a 20 µs window.
            noise_counts: 1000.0 / 150.0,
            reference_window_s: 20e-6,
            phase_rad: 0.7,
            dc_offset_counts: (1.5, -0.9),
            full_scale_counts: 8_388_607.0,
        }
    }
}

/// A complex number, just what the physics needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Cplx {
    pub re: f64,
    pub im: f64,
}

impl Cplx {
    pub fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }
    pub fn polar(r: f64, phi: f64) -> Self {
        Self::new(r * phi.cos(), r * phi.sin())
    }
    pub fn mul(self, o: Self) -> Self {
        Self::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
    pub fn scale(self, k: f64) -> Self {
        Self::new(self.re * k, self.im * k)
    }
    pub fn add(self, o: Self) -> Self {
        Self::new(self.re + o.re, self.im + o.im)
    }
    pub fn sub(self, o: Self) -> Self {
        Self::new(self.re - o.re, self.im - o.im)
    }
    pub fn div(self, o: Self) -> Self {
        let d = o.re * o.re + o.im * o.im;
        Self::new(
            (self.re * o.re + self.im * o.im) / d,
            (self.im * o.re - self.re * o.im) / d,
        )
    }
    pub fn exp(self) -> Self {
        Self::polar(self.re.exp(), self.im)
    }
}

/// ∫_u^v exp(z·τ) dτ, with the z → 0 limit.
fn integral_exp(z: Cplx, u: f64, v: f64) -> Cplx {
    if z.re.abs() + z.im.abs() < 1e-9 {
        return Cplx::new(v - u, 0.0);
    }
    z.scale(v).exp().sub(z.scale(u).exp()).div(z)
}

/// Mean over [u, v] (times relative to the echo centre) of exp(−|τ|/T2*)·exp(i2πΔf·τ).
pub(crate) fn window_mean(u: f64, v: f64, offset_hz: f64, t2_star_s: f64) -> Cplx {
    if v <= u {
        return Cplx::new(0.0, 0.0);
    }
    let w = 2.0 * std::f64::consts::PI * offset_hz;
    let a = 1.0 / t2_star_s;
    let mut total = Cplx::new(0.0, 0.0);
    if v > 0.0 {
        total = total.add(integral_exp(Cplx::new(-a, w), u.max(0.0), v));
    }
    if u < 0.0 {
        total = total.add(integral_exp(Cplx::new(a, w), u, v.min(0.0)));
    }
    total.scale(1.0 / (v - u))
}

/// The board registers the physics needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ScanSettings {
    pub rf_hz: f64,
    pub tx_amplitude: u16,
    pub p90_ticks: u32,
    pub p180_ticks: u32,
    pub acq_delay_ticks: u32,
}

/// What one scan of a program produces for unit longitudinal magnetisation before the first pulse.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ScanResponse {
    /// Noiseless signal of each acquire window (unit magnetisation, receiver phase excluded).
    pub windows: Vec<Cplx>,
    /// Length of each window, seconds (sets its noise).
    pub window_s: Vec<f64>,
    /// Fraction of Mz left along z after the excitation pulse.
    pub mz_after_excitation: f64,
    /// Program length, seconds.
    pub duration_s: f64,
}

/// Evaluates one scan of `entries` (a validated program) at magnet temperature `temp_c`.
pub(crate) fn evaluate_scan(
    entries: &[ProgramEntry],
    settings: ScanSettings,
    temp_c: f64,
    magnet: &VirtualMagnet,
    coil: &VirtualCoil,
    tube: &VirtualTube,
) -> ScanResponse {
    let tick_s = TICK_NS as f64 * 1e-9;
    let offset_hz = magnet.larmor_hz(temp_c) - settings.rf_hz;
    let offset_rad_s = 2.0 * std::f64::consts::PI * offset_hz;
    let omega1_default = std::f64::consts::FRAC_PI_2 / coil.p90_s * coil.b1_relative;

    // Flatten the single loop level.
    let start = entries.iter().position(|e| e.flags & FLAG_LOOP_START != 0);
    let end = entries.iter().position(|e| e.flags & FLAG_LOOP_END != 0);
    let mut order: Vec<usize> = Vec::new();
    match (start, end) {
        (Some(s), Some(t)) => {
            order.extend(0..s);
            for _ in 0..entries[t].loop_count {
                order.extend(s..=t);
            }
            order.extend(t + 1..entries.len());
        }
        _ => order.extend(0..entries.len()),
    }

    let refocusing = refocusing_train(
        &order,
        entries,
        settings,
        tick_s,
        omega1_default,
        offset_rad_s,
        tube,
    );
    let mut refocusing_pulses = 0usize;
    let mut t = 0.0;
    let mut excitation: Option<(f64, f64, f64)> = None; // (centre, amplitude, phase)
    let mut refocus_factor: Option<f64> = None;
    let mut echo_centre = 0.0;
    let mut blanked_until = f64::NEG_INFINITY;
    let mut mz_after_excitation = 1.0;
    let mut windows = Vec::new();
    let mut window_s = Vec::new();
    for &index in &order {
        let entry = entries[index];
        let length = entry_length_s(entry, settings, tick_s);
        if entry.flags & FLAG_RF != 0 {
            let (omega_eff, transverse_share) =
                rf_field(entry, settings, omega1_default, offset_rad_s);
            let centre = t + length / 2.0;
            match excitation {
                None => {
                    let exc = transverse_share * (omega_eff * length).sin();
                    let nz2 = 1.0 - transverse_share * transverse_share;
                    mz_after_excitation = nz2 + (1.0 - nz2) * (omega_eff * length).cos();
                    let phase = f64::from(entry.phase_quarters) * std::f64::consts::FRAC_PI_2;
                    excitation = Some((centre, exc, phase));
                    echo_centre = centre;
                }
                Some(_) => {
                    if refocus_factor.is_none() {
                        refocus_factor =
                            Some((transverse_share * (omega_eff * length / 2.0).sin()).powi(2));
                    }
                    echo_centre = 2.0 * centre - echo_centre;
                    refocusing_pulses += 1;
                }
            }
            blanked_until = t + length + f64::from(settings.acq_delay_ticks) * tick_s;
        } else if entry.flags & FLAG_ACQUIRE != 0 {
            let value = match excitation {
                None => Cplx::new(0.0, 0.0),
                Some((centre, exc, phase)) => {
                    let open = t.max(blanked_until).min(t + length);
                    let mean = window_mean(
                        open - echo_centre,
                        t + length - echo_centre,
                        offset_hz,
                        magnet.t2_star_s,
                    )
                    .scale((t + length - open) / length);
                    let echo = match (&refocusing, refocusing_pulses) {
                        (Some(echoes), k) if k >= 1 && k <= echoes.len() => echoes[k - 1],
                        _ => refocus_factor.unwrap_or(1.0) * tube.decay(t + length / 2.0 - centre),
                    };
                    mean.mul(Cplx::polar(exc * echo, phase))
                }
            };
            windows.push(value);
            window_s.push(length);
        }
        t += length;
    }
    ScanResponse {
        windows,
        window_s,
        mz_after_excitation,
        duration_s: t,
    }
}

/// How long a program entry lasts: the calibrated 90° or 180° pulse when the entry asks for it,
/// else its own duration.
fn entry_length_s(entry: ProgramEntry, settings: ScanSettings, tick_s: f64) -> f64 {
    let ticks = if entry.flags & FLAG_USE_P90 != 0 {
        settings.p90_ticks
    } else if entry.flags & FLAG_USE_P180 != 0 {
        settings.p180_ticks
    } else {
        entry.duration_ticks
    };
    f64::from(ticks) * tick_s
}

/// The effective nutation rate of an RF entry off resonance and the share of it that tips
/// magnetisation into the transverse plane (ω1/ωe; 0 with no field at all).
fn rf_field(
    entry: ProgramEntry,
    settings: ScanSettings,
    omega1_default: f64,
    offset_rad_s: f64,
) -> (f64, f64) {
    let amplitude =
        f64::from(settings.tx_amplitude) / 32768.0 * f64::from(entry.amplitude) / 65535.0;
    let omega1 = omega1_default * amplitude;
    let omega_eff = (omega1 * omega1 + offset_rad_s * offset_rad_s).sqrt();
    let share = if omega_eff > 0.0 {
        omega1 / omega_eff
    } else {
        0.0
    };
    (omega_eff, share)
}

/// The echoes of a CPMG by the extended phase graph when its refocusing is imperfect: `None` for a
/// program with no refocusing pulse or with β = 180° (the plain decay is then exact). The spacing is
/// twice the time from the excitation's centre to the first refocusing pulse's; β is the first
/// refocusing pulse's effective angle; each echo includes the spin density and the off-resonance
/// share (ω1/ωe)².
fn refocusing_train(
    order: &[usize],
    entries: &[ProgramEntry],
    settings: ScanSettings,
    tick_s: f64,
    omega1_default: f64,
    offset_rad_s: f64,
    tube: &VirtualTube,
) -> Option<Vec<f64>> {
    let mut t = 0.0;
    let mut pulses: Vec<(f64, f64, f64)> = Vec::new(); // (centre, effective angle, share²)
    for &index in order {
        let entry = entries[index];
        let length = entry_length_s(entry, settings, tick_s);
        if entry.flags & FLAG_RF != 0 {
            let (omega_eff, share) = rf_field(entry, settings, omega1_default, offset_rad_s);
            pulses.push((t + length / 2.0, omega_eff * length, share * share));
        }
        t += length;
    }
    let (first, refocusing) = pulses.split_first()?;
    let &(centre, beta, share2) = refocusing.first()?;
    if (beta - std::f64::consts::PI).abs() < 1e-9 {
        return None;
    }
    let te_s = 2.0 * (centre - first.0);
    if te_s <= 0.0 || te_s.is_nan() {
        return None;
    }
    let mut echoes = vec![0.0; refocusing.len()];
    let r1 = 1.0 / tube.t1_s;
    for component in &tube.components {
        let decay =
            nmr_core::epg::cpmg_echoes(refocusing.len(), te_s, 1.0 / component.t2_s, r1, beta);
        for (e, d) in echoes.iter_mut().zip(decay) {
            *e += tube.spin_density * component.amplitude * share2 * d;
        }
    }
    Some(echoes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn larmor_frequency_matches_gamma_b0_and_temperature_coefficient() {
        let magnet = VirtualMagnet::default();
        // 42.577 MHz/T × 0.49 T = 20.86273 MHz; −0.10 %/K → −20.86 kHz/K.
        assert!((magnet.larmor_hz(25.0) - 20_862_730.0).abs() < 1e-3);
        assert!((magnet.larmor_hz(26.0) - magnet.larmor_hz(25.0) + 20_862.73).abs() < 1e-3);
    }

    #[test]
    fn centred_window_without_t2_star_is_a_sinc() {
        // Independent closed form: mean of exp(i2πΔf·τ) over [−T/2, T/2] = sin(πΔfT)/(πΔfT).
        let (df, tw) = (12_000.0, 20e-6);
        let mean = window_mean(-tw / 2.0, tw / 2.0, df, 1e9);
        let x = std::f64::consts::PI * df * tw;
        assert!((mean.re - x.sin() / x).abs() < 1e-9);
        assert!(mean.im.abs() < 1e-9);
    }

    #[test]
    fn fid_window_phase_ramps_with_offset() {
        // A short window at t has phase 2πΔf·t.
        let (df, t0, tw) = (300.0, 200e-6, 1e-6);
        let mean = window_mean(t0, t0 + tw, df, 1e9);
        let expected = 2.0 * std::f64::consts::PI * df * (t0 + tw / 2.0);
        assert!((mean.im.atan2(mean.re) - expected).abs() < 1e-6);
    }
}
