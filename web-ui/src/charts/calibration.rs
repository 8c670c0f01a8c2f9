//! A calibration lot's dilution series: ΔR2 against spiked cells with every replicate, the
//! weighted fit line with its 95 % band, and LoB, LoD and LoQ marked on the cells axis.
//!
//! It does not fit: slope, intercept, band and limits come with the input.

use plotters::prelude::*;

use super::legend::{LEGEND_ROW_PX, LegendItem, LegendMark, draw_legend, legend_rows};
use super::svg_document::{
    CAPTION_PT, FONT, Hotspot, LABEL_PT, NOTE_PT, finish, padded_range, palette, placeholder, tick,
};

/// Size of the calibration chart in SVG pixels.
pub const CALIBRATION_SIZE_PX: (u32, u32) = (900, 480);

/// One replicate of the series.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationPoint {
    /// Cells spiked into the tube.
    pub cells: f64,
    /// Measured ΔR2 in 1/s.
    pub delta_r2_per_s: f64,
}

/// The fitted line ΔR2 = intercept + slope·cells, with its band.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationLine {
    /// Slope in (1/s) per cell.
    pub slope_per_s_per_cell: f64,
    /// Intercept in 1/s.
    pub intercept_per_s: f64,
    /// The 95 % band as `[cells, low ΔR2, high ΔR2]`, increasing in cells (may be empty).
    pub band_95: Vec<[f64; 3]>,
}

/// Input of [`calibration_chart`].
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationChart {
    /// The reagent lot.
    pub lot: String,
    /// Replicates of the dilution series.
    pub points: Vec<CalibrationPoint>,
    /// The weighted fit, when computed.
    pub line: Option<CalibrationLine>,
    /// Limit of blank, in cells.
    pub lob_cells: Option<f64>,
    /// Limit of detection, in cells.
    pub lod_cells: Option<f64>,
    /// Limit of quantitation, in cells.
    pub loq_cells: Option<f64>,
    /// What the points are, when not the series' replicates (e.g. level summaries from a
    /// stored calibration that keeps no per-sample readings); `None` reads "Replicates".
    pub points_label: Option<String>,
}

/// Draws the calibration; no replicates draws a "no data yet" panel.
pub fn calibration_chart(input: &CalibrationChart) -> String {
    let title = format!("Calibration, lot {}", input.lot);
    let points: Vec<(f64, f64)> = input
        .points
        .iter()
        .map(|p| (p.cells, p.delta_r2_per_s))
        .filter(|(c, d)| c.is_finite() && d.is_finite())
        .collect();
    if points.is_empty() {
        return placeholder(
            "calibration",
            &title,
            "No data yet: no dilution series measured for this lot.",
            CALIBRATION_SIZE_PX,
        );
    }
    let line = input
        .line
        .as_ref()
        .filter(|l| l.slope_per_s_per_cell.is_finite() && l.intercept_per_s.is_finite());
    let mut svg = String::new();
    match draw(&mut svg, input, &points, line) {
        Ok(hotspots) => {
            let fit_words = line
                .map(|l| {
                    format!(
                        " Weighted fit ΔR2 = {} + {}·cells (1/s).",
                        tick(l.intercept_per_s),
                        tick(l.slope_per_s_per_cell)
                    )
                })
                .unwrap_or_default();
            let limits: Vec<String> = [
                ("LoB", input.lob_cells),
                ("LoD", input.lod_cells),
                ("LoQ", input.loq_cells),
            ]
            .iter()
            .filter_map(|(name, value)| value.map(|v| format!("{name} {} cells", tick(v))))
            .collect();
            let what = input.points_label.as_deref().map_or_else(
                || "replicates".to_owned(),
                |label| format!("points ({label})"),
            );
            let desc = format!(
                "{} {what} of ΔR2 against spiked cells.{fit_words} {}",
                points.len(),
                limits.join(", ")
            );
            finish(&svg, "calibration", &title, desc.trim_end(), &hotspots)
        }
        Err(error) => placeholder(
            "calibration",
            &title,
            &format!("The chart could not be drawn: {error}"),
            CALIBRATION_SIZE_PX,
        ),
    }
}

fn draw(
    svg: &mut String,
    input: &CalibrationChart,
    points: &[(f64, f64)],
    line: Option<&CalibrationLine>,
) -> Result<Vec<Hotspot>, Box<dyn std::error::Error>> {
    let limits = [input.lob_cells, input.lod_cells, input.loq_cells];
    let cells_high = points
        .iter()
        .map(|p| p.0)
        .chain(limits.iter().flatten().copied())
        .filter(|c| c.is_finite())
        .fold(1.0, f64::max)
        * 1.06;
    let band_values = line
        .into_iter()
        .flat_map(|l| l.band_95.iter().flat_map(|b| [b[1], b[2]]));
    let (r2_low, r2_high) = padded_range(
        points.iter().map(|p| p.1).chain(band_values).chain([0.0]),
        0.08,
    )
    .expect("points are finite and non-empty");

    let named = [
        ("LoB", input.lob_cells, palette::GREY),
        ("LoD", input.lod_cells, palette::ORANGE),
        ("LoQ", input.loq_cells, palette::RED),
    ];
    let mut legend = vec![LegendItem {
        mark: LegendMark::Dot(palette::BLUE),
        label: input
            .points_label
            .clone()
            .unwrap_or_else(|| "Replicates".into()),
    }];
    if let Some(line) = line {
        legend.push(LegendItem {
            mark: LegendMark::Line(palette::TEAL),
            label: format!(
                "Weighted fit: ΔR2 = {} + {} × cells",
                tick(line.intercept_per_s),
                tick(line.slope_per_s_per_cell)
            ),
        });
        if line.band_95.len() >= 2 {
            legend.push(LegendItem {
                mark: LegendMark::Band(palette::TEAL),
                label: "95 % band".into(),
            });
        }
    }
    for (name, value, colour) in named {
        if let Some(cells) = value.filter(|c| c.is_finite()) {
            legend.push(LegendItem {
                mark: LegendMark::Dashed(colour),
                label: format!("{name} {} cells", tick(cells)),
            });
        }
    }

    let root = SVGBackend::with_string(svg, CALIBRATION_SIZE_PX).into_drawing_area();
    root.fill(&WHITE)?;
    let legend_px = legend_rows(&legend, CALIBRATION_SIZE_PX.0) * LEGEND_ROW_PX + 6;
    let (plot_area, legend_area) = root.split_vertically(CALIBRATION_SIZE_PX.1 - legend_px);
    // Start the cells axis a little below zero so the blanks are not cut in half by the axis.
    let cells_low = -0.02 * cells_high;
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(16)
        .caption(
            format!("Dilution series, lot {}", input.lot),
            (FONT, CAPTION_PT).into_font().color(&palette::INK),
        )
        .x_label_area_size(52)
        .y_label_area_size(78)
        .build_cartesian_2d(cells_low..cells_high, r2_low..r2_high)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .x_desc("Spiked cells")
        .y_desc("ΔR2 (1/s)")
        .label_style((FONT, LABEL_PT).into_font().color(&palette::INK))
        .axis_desc_style((FONT, LABEL_PT).into_font().color(&palette::INK))
        .light_line_style(palette::GRID.mix(0.0))
        .bold_line_style(palette::GRID)
        .axis_style(palette::INK)
        .draw()?;

    if let Some(line) = line {
        let band: Vec<[f64; 3]> = line
            .band_95
            .iter()
            .copied()
            .filter(|b| b.iter().all(|v| v.is_finite()))
            .collect();
        if band.len() >= 2 {
            let outline: Vec<(f64, f64)> = band
                .iter()
                .map(|b| (b[0], b[2]))
                .chain(band.iter().rev().map(|b| (b[0], b[1])))
                .collect();
            chart.draw_series([Polygon::new(outline, palette::TEAL.mix(0.25).filled())])?;
        }
        let at = |cells: f64| {
            (
                cells,
                line.intercept_per_s + line.slope_per_s_per_cell * cells,
            )
        };
        chart.draw_series(LineSeries::new(
            [at(0.0), at(cells_high)],
            palette::TEAL.stroke_width(3),
        ))?;
    }
    chart.draw_series(
        points
            .iter()
            .map(|p| Circle::new(*p, 6, palette::BLUE.filled())),
    )?;

    let mut hotspots: Vec<Hotspot> = points
        .iter()
        .map(|p| {
            let (x_px, y_px) = chart.backend_coord(p);
            Hotspot {
                x_px,
                y_px,
                class: "point".into(),
                title: format!("{} cells: ΔR2 {} 1/s", tick(p.0), tick(p.1)),
            }
        })
        .collect();
    for (row, (name, value, colour)) in named.into_iter().enumerate() {
        let Some(cells) = value.filter(|c| c.is_finite()) else {
            continue;
        };
        chart.draw_series(DashedLineSeries::new(
            [(cells, r2_low), (cells, r2_high)],
            8,
            6,
            colour.stroke_width(2),
        ))?;
        let (x_px, y_px) = chart.backend_coord(&(cells, r2_high));
        // Limits sit close together near zero: stagger their names down the lines.
        let text_y = y_px + 14 + 22 * row as i32;
        plot_area.draw(&Text::new(
            name,
            (x_px + 5, text_y),
            (FONT, NOTE_PT).into_font().color(&colour),
        ))?;
        hotspots.push(Hotspot {
            x_px,
            y_px: text_y,
            class: format!("limit limit-{}", name.to_lowercase()),
            title: format!("{name}: {} cells", tick(cells)),
        });
    }
    draw_legend(&legend_area, &legend)?;
    root.present()?;
    Ok(hotspots)
}
