//! One replicate's CPMG decay: echo amplitudes against time with the fitted mono-exponential, and
//! the residuals (measured − fitted) in a panel below, so a reviewer sees at a glance whether the
//! fit follows the data.
//!
//! It does not fit: the fitted parameters come with the input. Long trains (thousands of echoes)
//! are drawn as bin means so the page stays light; the description says so.

use plotters::prelude::*;

use super::svg_document::{
    CAPTION_PT, FONT, LABEL_PT, NOTE_PT, finish, padded_range, palette, placeholder, tick,
};

/// Size of the decay chart in SVG pixels.
pub const DECAY_SIZE_PX: (u32, u32) = (720, 500);

/// Longest train drawn echo by echo; longer ones are drawn as this many bin means (about one
/// point per 3 px of plot width: denser adds page weight, not information).
pub const MAX_DRAWN_ECHOES: usize = 200;

/// The fitted mono-exponential `A·exp(−t/T2) + C`.
#[derive(Clone, Debug, PartialEq)]
pub struct FittedDecay {
    /// Amplitude A (same units as the echoes).
    pub amplitude: f64,
    /// T2 in milliseconds.
    pub t2_ms: f64,
    /// Offset C.
    pub offset: f64,
    /// Echoes left out of the fit at the start of the train (usually 1).
    pub echoes_skipped: usize,
}

impl FittedDecay {
    /// The fitted signal at `t_ms`.
    pub fn at(&self, t_ms: f64) -> f64 {
        self.amplitude * (-t_ms / self.t2_ms).exp() + self.offset
    }
}

/// Input of [`decay_chart`].
#[derive(Clone, Debug, PartialEq)]
pub struct DecayChart {
    /// What the train is, e.g. "Tube 2 (quad), replicate 3".
    pub label: String,
    /// Echo times in milliseconds.
    pub times_ms: Vec<f64>,
    /// Echo amplitudes (phased real channel or magnitude), arbitrary units.
    pub amplitudes: Vec<f64>,
    /// The fit, when one converged.
    pub fit: Option<FittedDecay>,
}

/// Draws the decay and residuals; an empty or unusable train draws a "no data yet" panel.
pub fn decay_chart(input: &DecayChart) -> String {
    let title = format!("Decay: {}", input.label);
    let echoes: Vec<(f64, f64)> = input
        .times_ms
        .iter()
        .zip(&input.amplitudes)
        .map(|(t, a)| (*t, *a))
        .filter(|(t, a)| t.is_finite() && a.is_finite())
        .collect();
    if echoes.is_empty() {
        return placeholder(
            "decay",
            &title,
            "No data yet: no echoes recorded.",
            DECAY_SIZE_PX,
        );
    }
    let fit = input.fit.as_ref().filter(|f| {
        f.amplitude.is_finite() && f.offset.is_finite() && f.t2_ms.is_finite() && f.t2_ms > 0.0
    });
    // Echoes the fit left out (usually the first) are drawn apart and get no residual.
    let skipped_count = fit.map_or(0, |f| f.echoes_skipped.min(echoes.len()));
    let (skipped, used) = echoes.split_at(skipped_count);
    let drawn = bin_means(used, MAX_DRAWN_ECHOES);
    let mut svg = String::new();
    match draw(&mut svg, skipped, &drawn, fit) {
        Ok(()) => {
            let binning = if drawn.len() < used.len() {
                format!(
                    " Drawn as {} bin means of the {} fitted echoes.",
                    drawn.len(),
                    used.len()
                )
            } else {
                String::new()
            };
            let fit_words = match fit {
                Some(f) => format!(
                    " Fitted A·exp(−t/T2)+C with T2 = {} ms, A = {}, C = {}; residuals below.",
                    tick(f.t2_ms),
                    tick(f.amplitude),
                    tick(f.offset)
                ),
                None => " No fit.".to_string(),
            };
            let desc = format!(
                "{} echoes from {} to {} ms.{fit_words}{binning}",
                echoes.len(),
                tick(echoes[0].0),
                tick(echoes[echoes.len() - 1].0)
            );
            finish(&svg, "decay", &title, &desc, &[])
        }
        Err(error) => placeholder(
            "decay",
            &title,
            &format!("The chart could not be drawn: {error}"),
            DECAY_SIZE_PX,
        ),
    }
}

/// Means of consecutive bins so that at most `max_points` points remain (identity when short).
fn bin_means(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    if points.len() <= max_points || max_points == 0 {
        return points.to_vec();
    }
    let per_bin = points.len().div_ceil(max_points);
    points
        .chunks(per_bin)
        .map(|bin| {
            let n = bin.len() as f64;
            (
                bin.iter().map(|p| p.0).sum::<f64>() / n,
                bin.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect()
}

fn draw(
    svg: &mut String,
    skipped: &[(f64, f64)],
    echoes: &[(f64, f64)],
    fit: Option<&FittedDecay>,
) -> Result<(), Box<dyn std::error::Error>> {
    let all = || skipped.iter().chain(echoes);
    let root = SVGBackend::with_string(svg, DECAY_SIZE_PX).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(if fit.is_some() { 340 } else { DECAY_SIZE_PX.1 });
    let (t_low, t_high) = (0.0, all().map(|e| e.0).fold(0.0, f64::max) * 1.02);
    let t_high = if t_high > t_low { t_high } else { 1.0 };
    let (a_low, a_high) = padded_range(all().map(|e| e.1).chain([0.0]), 0.06)
        .expect("echoes are finite and non-empty");

    let mut chart = ChartBuilder::on(&upper)
        .margin(16)
        .caption(
            "Echo amplitude and fit",
            (FONT, CAPTION_PT).into_font().color(&palette::INK),
        )
        .x_label_area_size(if fit.is_some() { 10 } else { 50 })
        .y_label_area_size(78)
        .build_cartesian_2d(t_low..t_high, a_low..a_high)?;
    let mut mesh = chart.configure_mesh();
    mesh.y_labels(6)
        .y_label_formatter(&|v| tick(*v))
        .x_label_formatter(&|v| tick(*v))
        .y_desc("Amplitude")
        .label_style((FONT, LABEL_PT).into_font().color(&palette::INK))
        .axis_desc_style((FONT, LABEL_PT).into_font().color(&palette::INK))
        .light_line_style(palette::GRID.mix(0.0))
        .bold_line_style(palette::GRID)
        .axis_style(palette::INK);
    if fit.is_some() {
        mesh.x_labels(0);
    } else {
        mesh.x_desc("Time (ms)");
    }
    mesh.draw()?;
    chart
        .draw_series(
            echoes
                .iter()
                .map(|e| Circle::new(*e, 3, palette::BLUE.filled())),
        )?
        .label("Echoes")
        .legend(|(x, y)| Circle::new((x + 12, y), 4, palette::BLUE.filled()));
    if !skipped.is_empty() {
        chart
            .draw_series(
                skipped
                    .iter()
                    .map(|e| Circle::new(*e, 5, palette::GREY.stroke_width(2))),
            )?
            .label("Left out of the fit")
            .legend(|(x, y)| Circle::new((x + 12, y), 5, palette::GREY.stroke_width(2)));
    }
    if let Some(fit) = fit {
        let steps = 200;
        let curve = (0..=steps).map(|i| {
            let start = all().map(|e| e.0).fold(t_high, f64::min);
            let t = start + (t_high - start) * i as f64 / steps as f64;
            (t, fit.at(t))
        });
        chart
            .draw_series(LineSeries::new(curve, palette::RED.stroke_width(3)))?
            .label(format!("Fit: T2 = {} ms", tick(fit.t2_ms)))
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], palette::RED.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(palette::GREY)
        .label_font((FONT, NOTE_PT).into_font().color(&palette::INK))
        .draw()?;

    if let Some(fit) = fit {
        let residuals: Vec<(f64, f64)> = echoes.iter().map(|(t, a)| (*t, a - fit.at(*t))).collect();
        let largest = residuals
            .iter()
            .map(|r| r.1.abs())
            .filter(|r| r.is_finite())
            .fold(0.0, f64::max);
        let bound = if largest > 0.0 { largest * 1.15 } else { 1.0 };
        let mut panel = ChartBuilder::on(&lower)
            .margin_left(16)
            .margin_right(16)
            .margin_bottom(10)
            .x_label_area_size(50)
            .y_label_area_size(78)
            .build_cartesian_2d(t_low..t_high, -bound..bound)?;
        panel
            .configure_mesh()
            .y_labels(5)
            .x_labels(8)
            .y_label_formatter(&|v| tick(*v))
            .x_label_formatter(&|v| tick(*v))
            .x_desc("Time (ms)")
            .y_desc("Residual")
            .label_style((FONT, LABEL_PT).into_font().color(&palette::INK))
            .axis_desc_style((FONT, LABEL_PT).into_font().color(&palette::INK))
            .light_line_style(palette::GRID.mix(0.0))
            .bold_line_style(palette::GRID)
            .axis_style(palette::INK)
            .draw()?;
        panel.draw_series(LineSeries::new(
            [(t_low, 0.0), (t_high, 0.0)],
            palette::GREY.stroke_width(1),
        ))?;
        panel.draw_series(
            residuals
                .iter()
                .filter(|r| r.1.is_finite())
                .map(|r| Circle::new(*r, 3, palette::TEAL.filled())),
        )?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_means_average_consecutive_echoes() {
        let points: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 2.0 * i as f64)).collect();
        assert_eq!(bin_means(&points, 20), points);
        assert_eq!(
            bin_means(&points, 5),
            vec![(0.5, 1.0), (2.5, 5.0), (4.5, 9.0), (6.5, 13.0), (8.5, 17.0)]
        );
    }
}
