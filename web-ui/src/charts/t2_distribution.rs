//! A T2 distribution (from an inverse Laplace transform of a decay): amplitude against T2 on a
//! logarithmic axis, with the log-mean T2 marked.
//!
//! It draws a distribution computed elsewhere; it does not invert anything.

use plotters::prelude::*;

use super::legend::{LEGEND_ROW_PX, LegendItem, LegendMark, draw_legend, legend_rows};
use super::svg_document::{
    CAPTION_PT, FONT, Hotspot, LABEL_PT, finish, palette, placeholder, tick,
};

/// Size of the T2 distribution chart in SVG pixels.
pub const T2_DISTRIBUTION_SIZE_PX: (u32, u32) = (720, 360);

/// Input of [`t2_distribution_chart`].
#[derive(Clone, Debug, PartialEq)]
pub struct T2DistributionChart {
    /// What the distribution belongs to, e.g. "Tube 1 (baseline), replicate 1".
    pub label: String,
    /// T2 grid in milliseconds (positive, increasing).
    pub t2_ms: Vec<f64>,
    /// Amplitude at each grid point.
    pub amplitudes: Vec<f64>,
    /// The amplitude-weighted log-mean T2 in ms, when computed.
    pub log_mean_t2_ms: Option<f64>,
}

/// Draws the distribution; an empty one draws a "no data yet" panel.
pub fn t2_distribution_chart(input: &T2DistributionChart) -> String {
    let title = format!("T2 distribution: {}", input.label);
    let bins: Vec<(f64, f64)> = input
        .t2_ms
        .iter()
        .zip(&input.amplitudes)
        .map(|(t, a)| (*t, *a))
        .filter(|(t, a)| t.is_finite() && *t > 0.0 && a.is_finite())
        .collect();
    if bins.is_empty() {
        return placeholder(
            "t2-distribution",
            &title,
            "No data yet: no T2 distribution computed.",
            T2_DISTRIBUTION_SIZE_PX,
        );
    }
    let log_mean = input.log_mean_t2_ms.filter(|t| t.is_finite() && *t > 0.0);
    let mut svg = String::new();
    match draw(&mut svg, &bins, log_mean) {
        Ok(hotspots) => {
            let mean_words = log_mean
                .map(|t| format!(" Log-mean T2 {} ms.", tick(t)))
                .unwrap_or_default();
            let desc = format!(
                "Amplitude against T2 from {} to {} ms on a logarithmic axis, {} bins.{mean_words}",
                tick(bins[0].0),
                tick(bins[bins.len() - 1].0),
                bins.len()
            );
            finish(&svg, "t2-distribution", &title, &desc, &hotspots)
        }
        Err(error) => placeholder(
            "t2-distribution",
            &title,
            &format!("The chart could not be drawn: {error}"),
            T2_DISTRIBUTION_SIZE_PX,
        ),
    }
}

fn draw(
    svg: &mut String,
    bins: &[(f64, f64)],
    log_mean: Option<f64>,
) -> Result<Vec<Hotspot>, Box<dyn std::error::Error>> {
    let t_min = bins
        .iter()
        .map(|b| b.0)
        .chain(log_mean)
        .fold(f64::INFINITY, f64::min);
    let t_max = bins.iter().map(|b| b.0).chain(log_mean).fold(0.0, f64::max);
    let (t_low, t_high) = (t_min / 1.5, t_max * 1.5);
    let a_high = bins.iter().map(|b| b.1).fold(0.0, f64::max);
    let a_high = if a_high > 0.0 { a_high * 1.2 } else { 1.0 };
    let a_low = bins.iter().map(|b| b.1).fold(0.0, f64::min);

    let mut legend = vec![LegendItem {
        mark: LegendMark::Line(palette::BLUE),
        label: "Amplitude per T2 bin".into(),
    }];
    if let Some(mean) = log_mean {
        legend.push(LegendItem {
            mark: LegendMark::Dashed(palette::RED),
            label: format!("Log-mean T2 = {} ms", tick(mean)),
        });
    }
    let root = SVGBackend::with_string(svg, T2_DISTRIBUTION_SIZE_PX).into_drawing_area();
    root.fill(&WHITE)?;
    let legend_px = legend_rows(&legend, T2_DISTRIBUTION_SIZE_PX.0) * LEGEND_ROW_PX + 6;
    let (plot_area, legend_area) = root.split_vertically(T2_DISTRIBUTION_SIZE_PX.1 - legend_px);
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(14)
        .caption(
            "T2 distribution",
            (FONT, CAPTION_PT).into_font().color(&palette::INK),
        )
        .x_label_area_size(52)
        .y_label_area_size(78)
        .build_cartesian_2d((t_low..t_high).log_scale(), a_low..a_high)?;
    chart
        .configure_mesh()
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .x_desc("T2 (ms, logarithmic)")
        .y_desc("Amplitude")
        .label_style((FONT, LABEL_PT).into_font().color(&palette::INK))
        .axis_desc_style((FONT, LABEL_PT).into_font().color(&palette::INK))
        .light_line_style(palette::GRID.mix(0.0))
        .bold_line_style(palette::GRID)
        .axis_style(palette::INK)
        .draw()?;
    chart.draw_series(
        AreaSeries::new(bins.iter().copied(), 0.0, palette::BLUE.mix(0.18))
            .border_style(palette::BLUE.stroke_width(3)),
    )?;
    let mut hotspots = Vec::new();
    if let Some(mean) = log_mean {
        chart.draw_series(DashedLineSeries::new(
            [(mean, a_low), (mean, a_high)],
            10,
            6,
            palette::RED.stroke_width(3),
        ))?;
        let (x_px, y_px) = chart.backend_coord(&(mean, a_high * 0.5));
        hotspots.push(Hotspot {
            x_px,
            y_px,
            class: "log-mean".into(),
            title: format!("Log-mean T2 = {} ms", tick(mean)),
        });
    }
    draw_legend(&legend_area, &legend)?;
    root.present()?;
    Ok(hotspots)
}
