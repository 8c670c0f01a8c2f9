//! Nutation: find the 90° pulse length.
//!
//! The FID after a pulse of length τ is ∝ sin(ω1·τ), signed. Rather than locate the broad maximum at
//! 90°, find the sharp zero crossing at 180° and halve it: a coarse sweep brackets the first sign
//! change, a fine sweep around it is fitted by a straight line whose root is τ180. Partial
//! saturation (short TR) scales the signal but does not move the zero.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

use super::{ProcedureError, RunSettings, run_sequence};
use crate::frontend::{Frontend, PhaseCycle, PulseProgram};

/// How to sweep.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NutationSettings {
    /// Transmit amplitude to calibrate (0x8000 is the default).
    pub tx_amplitude: u16,
    /// Coarse sweep: first, last and step pulse length, ns (multiples of 10 ns).
    pub coarse_ns: (u64, u64, u64),
    /// Fine sweep half-width around the coarse zero and its step, ns.
    pub fine_half_width_ns: u64,
    /// Fine sweep step, ns.
    pub fine_step_ns: u64,
    /// Delay from pulse end to the window, ns.
    pub delay_ns: u64,
    /// FID window, ns.
    pub window_ns: u64,
    /// Scans per point (multiple of 2).
    pub scans: u16,
    /// Repetition time, µs.
    pub tr_us: u32,
}

impl Default for NutationSettings {
    fn default() -> Self {
        Self {
            tx_amplitude: 0x8000,
            coarse_ns: (2_000, 40_000, 1_000),
            fine_half_width_ns: 1_000,
            fine_step_ns: 100,
            delay_ns: 10_000,
            window_ns: 10_000,
            scans: 2,
            tr_us: 1_000_000,
        }
    }
}

/// One pulse length and its signal.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct NutationPoint {
    /// Pulse length, ns.
    pub pulse_ns: u64,
    /// FID I, counts.
    pub i: i32,
    /// FID Q, counts.
    pub q: i32,
    /// Signal projected on the reference phase, counts (signed).
    pub projected: f64,
}

/// The nutation result.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NutationReport {
    /// Transmit amplitude used.
    pub tx_amplitude: u16,
    /// 180° pulse length found, ns.
    pub p180_ns: f64,
    /// 90° pulse length (p180/2), ns.
    pub p90_ns: f64,
    /// p90 rounded to the nearest programmable value (a multiple of 20 ns, so p90/2 is whole ticks).
    pub p90_ns_programmable: u64,
    /// p180 rounded the same way.
    pub p180_ns_programmable: u64,
    /// Coarse sweep.
    pub coarse: Vec<NutationPoint>,
    /// Fine sweep.
    pub fine: Vec<NutationPoint>,
}

/// Pulse length (ns), I, Q.
type RawPoint = (u64, i32, i32);

fn sweep<SPI, DR, RST, D>(
    frontend: &mut Frontend<SPI, DR, RST, D>,
    settings: &NutationSettings,
    lengths_ns: impl Iterator<Item = u64>,
) -> Result<Vec<RawPoint>, ProcedureError<SPI::Error>>
where
    SPI: SpiDevice,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let program = PulseProgram::nutation_step(settings.delay_ns, settings.window_ns)
        .map_err(crate::frontend::Error::from)?;
    let run = RunSettings {
        scans: settings.scans,
        dummy_scans: 1,
        tr_us: settings.tr_us,
        phase_cycle: PhaseCycle::Two,
    };
    let mut points = Vec::new();
    for pulse_ns in lengths_ns {
        frontend.set_p90_ns(pulse_ns)?;
        let echoes = run_sequence(frontend, &program, run, None)?;
        let Some(sample) = echoes.first() else {
            return Err(ProcedureError::NoResult {
                procedure: "nutation",
                reason: "no FID sample".to_owned(),
            });
        };
        points.push((pulse_ns, sample.i, sample.q));
    }
    Ok(points)
}

fn project(points: &[(u64, i32, i32)], phase: f64) -> Vec<NutationPoint> {
    points
        .iter()
        .map(|&(pulse_ns, i, q)| NutationPoint {
            pulse_ns,
            i,
            q,
            projected: f64::from(i) * phase.cos() + f64::from(q) * phase.sin(),
        })
        .collect()
}

/// Sweeps the pulse length and finds the 90° pulse. Leaves `P90` set to the result (rounded to a
/// programmable value) and `P180` to twice that.
pub fn find_p90<SPI, DR, RST, D>(
    frontend: &mut Frontend<SPI, DR, RST, D>,
    settings: &NutationSettings,
) -> Result<NutationReport, ProcedureError<SPI::Error>>
where
    SPI: SpiDevice,
    DR: InputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let no_result = |reason: &str| ProcedureError::NoResult {
        procedure: "nutation",
        reason: reason.to_owned(),
    };
    frontend.set_tx_amplitude(settings.tx_amplitude)?;
    let (first, last, step) = settings.coarse_ns;
    if step == 0 || first >= last {
        return Err(no_result("empty coarse sweep"));
    }
    let coarse_raw = sweep(frontend, settings, (first..=last).step_by(step as usize))?;
    // Reference phase: the strongest point is near 90° or 270°, where the phase is best defined.
    let strongest = coarse_raw
        .iter()
        .max_by(|a, b| {
            f64::from(a.1)
                .hypot(f64::from(a.2))
                .total_cmp(&f64::from(b.1).hypot(f64::from(b.2)))
        })
        .ok_or_else(|| no_result("no points"))?;
    let mut phase = f64::from(strongest.2).atan2(f64::from(strongest.1));
    // Orient it so that the short pulses (flip angles below 180°) give a positive signal.
    let short_sum: f64 = project(&coarse_raw[..coarse_raw.len().min(3)], phase)
        .iter()
        .map(|p| p.projected)
        .sum();
    if short_sum < 0.0 {
        phase += std::f64::consts::PI;
    }
    let coarse = project(&coarse_raw, phase);
    // The signal is positive from 0° to 180°: its first falling zero is 180°.
    let crossing = coarse
        .windows(2)
        .find(|w| w[0].projected > 0.0 && w[1].projected <= 0.0)
        .ok_or_else(|| no_result("no 180° zero crossing in the coarse sweep; widen it"))?;
    let (a, b) = (crossing[0], crossing[1]);
    let coarse_zero = a.pulse_ns as f64
        + (b.pulse_ns - a.pulse_ns) as f64 * a.projected / (a.projected - b.projected);
    let fine_step = settings.fine_step_ns.max(10);
    let centre = ((coarse_zero / fine_step as f64).round() as u64) * fine_step;
    let fine_first = centre.saturating_sub(settings.fine_half_width_ns).max(10);
    let fine_raw = sweep(
        frontend,
        settings,
        (fine_first..=centre + settings.fine_half_width_ns).step_by(fine_step as usize),
    )?;
    let fine = project(&fine_raw, phase);
    // Least-squares line through the fine points; its root is τ180.
    let n = fine.len() as f64;
    let mean_x = fine.iter().map(|p| p.pulse_ns as f64).sum::<f64>() / n;
    let mean_y = fine.iter().map(|p| p.projected).sum::<f64>() / n;
    let sxx: f64 = fine
        .iter()
        .map(|p| (p.pulse_ns as f64 - mean_x).powi(2))
        .sum();
    let sxy: f64 = fine
        .iter()
        .map(|p| (p.pulse_ns as f64 - mean_x) * (p.projected - mean_y))
        .sum();
    if sxx <= 0.0 || sxy >= 0.0 {
        return Err(no_result("fine sweep shows no falling zero crossing"));
    }
    let slope = sxy / sxx;
    let p180_ns = mean_x - mean_y / slope;
    let p90_ns = p180_ns / 2.0;
    let p90_ns_programmable = ((p90_ns / 20.0).round() as u64).max(1) * 20;
    let p180_ns_programmable = 2 * p90_ns_programmable;
    frontend.set_p90_ns(p90_ns_programmable)?;
    frontend.set_p180_ns(p180_ns_programmable)?;
    Ok(NutationReport {
        tx_amplitude: settings.tx_amplitude,
        p180_ns,
        p90_ns,
        p90_ns_programmable,
        p180_ns_programmable,
        coarse,
        fine,
    })
}
