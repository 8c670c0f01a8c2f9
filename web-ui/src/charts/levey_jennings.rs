//! A Levey–Jennings chart: one control material and lot's values over successive QC runs against
//! its target mean and ±1, 2, 3 SD lines, with Westgard violations marked and named.
//!
//! Violations are named twice: as visible text beside the point (a tablet has no hover) and in the
//! point's tooltip. It does not evaluate Westgard rules: the violations come with the points.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::svg_document::{
    CAPTION_PT, FONT, Hotspot, LABEL_PT, NOTE_PT, finish, palette, placeholder, tick,
};

/// Size of a Levey–Jennings chart in SVG pixels.
pub const LEVEY_JENNINGS_SIZE_PX: (u32, u32) = (960, 420);

/// A Westgard rule a point violates.
#[derive(Clone, Debug, PartialEq)]
pub struct LjViolation {
    /// The rule's code: `1-2s`, `1-3s`, `2-2s`, `R-4s`, `4-1s`, `10x`.
    pub rule: String,
    /// True when the rule rejects the run; false for a warning (1-2s).
    pub rejects: bool,
}

/// One control measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct LjPoint {
    /// When it was measured, as the page shows it (also the x tick label).
    pub measured_at: String,
    /// The measured value, in the chart's unit.
    pub value: f64,
    /// Rules this measurement violates (empty when in control).
    pub violations: Vec<LjViolation>,
}

/// Input of [`levey_jennings_chart`].
#[derive(Clone, Debug, PartialEq)]
pub struct LeveyJenningsChart {
    /// Control material, e.g. "Phantom T2 high".
    pub material: String,
    /// Control lot.
    pub lot: String,
    /// Unit of the values, e.g. "ms" (T2) or "CTC/7.5 mL".
    pub unit: String,
    /// Established mean of the lot.
    pub mean: f64,
    /// Established standard deviation of the lot (> 0).
    pub sd: f64,
    /// Measurements in run order, oldest first.
    pub points: Vec<LjPoint>,
}

/// Draws the chart; no measurements (or no usable target) draws a "no data yet" panel.
pub fn levey_jennings_chart(input: &LeveyJenningsChart) -> String {
    let title = format!("Levey–Jennings: {}, lot {}", input.material, input.lot);
    let points: Vec<&LjPoint> = input
        .points
        .iter()
        .filter(|p| p.value.is_finite())
        .collect();
    if points.is_empty() {
        return placeholder(
            "levey-jennings",
            &title,
            "No data yet: no QC measurements for this lot.",
            LEVEY_JENNINGS_SIZE_PX,
        );
    }
    if !(input.mean.is_finite() && input.sd.is_finite() && input.sd > 0.0) {
        return placeholder(
            "levey-jennings",
            &title,
            "No target yet: this lot has no established mean and SD.",
            LEVEY_JENNINGS_SIZE_PX,
        );
    }
    let mut svg = String::new();
    match draw(&mut svg, input, &points) {
        Ok(hotspots) => {
            let flagged = points.iter().filter(|p| !p.violations.is_empty()).count();
            let desc = format!(
                "{} measurements against mean {} {unit} and SD {} {unit}; {flagged} with Westgard violations.",
                points.len(),
                tick(input.mean),
                tick(input.sd),
                unit = input.unit
            );
            finish(&svg, "levey-jennings", &title, &desc, &hotspots)
        }
        Err(error) => placeholder(
            "levey-jennings",
            &title,
            &format!("The chart could not be drawn: {error}"),
            LEVEY_JENNINGS_SIZE_PX,
        ),
    }
}

fn draw(
    svg: &mut String,
    input: &LeveyJenningsChart,
    points: &[&LjPoint],
) -> Result<Vec<Hotspot>, Box<dyn std::error::Error>> {
    let (mean, sd) = (input.mean, input.sd);
    let z_extent = points
        .iter()
        .map(|p| ((p.value - mean) / sd).abs())
        .fold(3.6, f64::max)
        + 1.0;
    // Line labels carry enough decimals to tell the SD lines apart (SD 1.5 → one decimal).
    let decimals = (1.0 - sd.log10().floor()).clamp(0.0, 6.0) as usize;
    let x_high = points.len() as f64 + 0.5;

    let root = SVGBackend::with_string(svg, LEVEY_JENNINGS_SIZE_PX).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(16)
        .margin_right(130)
        .caption(
            format!("{} — lot {}", input.material, input.lot),
            (FONT, CAPTION_PT).into_font().color(&palette::INK),
        )
        .x_label_area_size(52)
        .y_label_area_size(78)
        .build_cartesian_2d(0.5..x_high, (mean - z_extent * sd)..(mean + z_extent * sd))?;
    let labels: Vec<String> = points.iter().map(|p| p.measured_at.clone()).collect();
    let x_label = |x: &f64| {
        let index = x.round() as i64 - 1;
        if (x - x.round()).abs() < 1e-9 && index >= 0 {
            labels.get(index as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_labels(points.len().min(8))
        .y_labels(7)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|v| tick(*v))
        .x_desc("QC run")
        .y_desc(format!("Value ({})", input.unit))
        .label_style((FONT, LABEL_PT).into_font().color(&palette::INK))
        .axis_desc_style((FONT, LABEL_PT).into_font().color(&palette::INK))
        .disable_x_mesh()
        .light_line_style(palette::GRID.mix(0.0))
        .bold_line_style(palette::GRID.mix(0.0))
        .axis_style(palette::INK)
        .draw()?;

    // Mean and SD lines, each named at the right-hand edge.
    let levels: [(f64, &str, RGBColor, u32); 7] = [
        (0.0, "mean", palette::TEAL, 3),
        (1.0, "+1 SD", palette::GREY, 1),
        (-1.0, "−1 SD", palette::GREY, 1),
        (2.0, "+2 SD", palette::ORANGE, 2),
        (-2.0, "−2 SD", palette::ORANGE, 2),
        (3.0, "+3 SD", palette::RED, 2),
        (-3.0, "−3 SD", palette::RED, 2),
    ];
    for (z, name, colour, width) in levels {
        let y = mean + z * sd;
        if z == 0.0 {
            chart.draw_series(LineSeries::new(
                [(0.5, y), (x_high, y)],
                colour.stroke_width(width),
            ))?;
        } else {
            chart.draw_series(DashedLineSeries::new(
                [(0.5, y), (x_high, y)],
                10,
                6,
                colour.stroke_width(width),
            ))?;
        }
        let (x_px, y_px) = chart.backend_coord(&(x_high, y));
        root.draw(&Text::new(
            format!("{name} {y:.decimals$}"),
            (x_px + 6, y_px - 8),
            (FONT, NOTE_PT).into_font().color(&colour),
        ))?;
    }

    let series: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| ((i + 1) as f64, p.value))
        .collect();
    chart.draw_series(LineSeries::new(
        series.iter().copied(),
        palette::BLUE.stroke_width(2),
    ))?;
    chart.draw_series(
        series
            .iter()
            .map(|p| Circle::new(*p, 6, palette::BLUE.filled())),
    )?;

    let mut hotspots = Vec::with_capacity(points.len());
    for (point, at) in points.iter().zip(&series) {
        let z = (point.value - mean) / sd;
        let rules: Vec<&str> = point.violations.iter().map(|v| v.rule.as_str()).collect();
        let rejects = point.violations.iter().any(|v| v.rejects);
        if !point.violations.is_empty() {
            let colour = if rejects {
                palette::RED
            } else {
                palette::ORANGE
            };
            chart.draw_series([EmptyElement::at(*at)
                + Circle::new((0, 0), 12, colour.stroke_width(3))
                + Cross::new((0, 0), 6, colour.stroke_width(3))])?;
            let (x_px, y_px) = chart.backend_coord(at);
            // The rule's name above a high point, below a low one, clear of the ring.
            let (dy, v_pos) = if z >= 0.0 {
                (-16, VPos::Bottom)
            } else {
                (16, VPos::Top)
            };
            // A white backing keeps the name readable where it crosses an SD line.
            let half_width = 5 * rules.join(", ").chars().count() as i32 + 4;
            let (top, bottom) = if z >= 0.0 {
                (y_px + dy - 18, y_px + dy + 1)
            } else {
                (y_px + dy - 1, y_px + dy + 18)
            };
            root.draw(&Rectangle::new(
                [(x_px - half_width, top), (x_px + half_width, bottom)],
                WHITE.filled(),
            ))?;
            root.draw(&Text::new(
                rules.join(", "),
                (x_px, y_px + dy),
                (FONT, NOTE_PT, FontStyle::Bold)
                    .into_font()
                    .color(&colour)
                    .pos(Pos::new(HPos::Center, v_pos)),
            ))?;
        }
        let (x_px, y_px) = chart.backend_coord(at);
        let verdict = if point.violations.is_empty() {
            "in control".to_string()
        } else if rejects {
            format!("REJECT: violates {}", rules.join(", "))
        } else {
            format!("warning: {}", rules.join(", "))
        };
        hotspots.push(Hotspot {
            x_px,
            y_px,
            class: if point.violations.is_empty() {
                "point".into()
            } else if rejects {
                "point violation violation-reject".into()
            } else {
                "point violation violation-warning".into()
            },
            title: format!(
                "{}: {} {} ({:+.1} SD), {verdict}",
                point.measured_at,
                tick(point.value),
                input.unit,
                z
            ),
        });
    }
    root.present()?;
    Ok(hotspots)
}
