//! A patient's CTC trend: count per 7.5 mL over draw time with 95 % interval bars and the
//! indication's cut-off.
//!
//! Quantified counts are filled circles with their interval; "detected, below LoQ" counts are
//! hollow orange circles with their interval; "not detected" results are hollow
//! down-pointing triangles at their upper bound (the count is *at most* that), so no reader takes
//! them for a measured value. A corrected result (its current version is drawn) is circled in ink
//! and its tooltip says so. It does not decide categories or calls: those come with the points.

use plotters::prelude::*;

use super::legend::{LEGEND_ROW_PX, LegendItem, LegendMark, draw_legend, legend_rows};
use super::svg_document::{
    CAPTION_PT, FONT, Hotspot, LABEL_PT, finish, padded_range, palette, placeholder, tick,
};

/// Size of the trend chart in SVG pixels (scaled to the page width by CSS).
pub const TREND_SIZE_PX: (u32, u32) = (960, 440);

const SECONDS_PER_DAY: f64 = 86_400.0;

/// One run on the trend.
#[derive(Clone, Debug, PartialEq)]
pub struct TrendChartPoint {
    /// Draw time, seconds since the Unix epoch (UTC): the x position.
    pub drawn_at_unix_s: i64,
    /// Draw time as the page shows it (local-readable), for the tooltip.
    pub drawn_at: String,
    /// Estimated CTC per 7.5 mL.
    pub per_7_5ml: f64,
    /// 95 % interval per 7.5 mL, low and high.
    pub per_7_5ml_ci95: [f64; 2],
    /// `quantified`, `below_loq` or `not_detected`.
    pub category: String,
    /// The run, for the tooltip and for scripts (`data-` free: it is in the class).
    pub run_id: i64,
    /// Whether the result shown is a correction of an earlier version (circled and said so).
    pub corrected: bool,
}

/// Input of [`trend_chart`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrendChart {
    /// Patient label for the title (e.g. the MRN).
    pub patient_label: String,
    /// The runs, in any order.
    pub points: Vec<TrendChartPoint>,
    /// The indication's unfavourable cut-off per 7.5 mL, when known.
    pub cutoff_per_7_5ml: Option<f64>,
    /// The indication's name (`breast`, …), for the cut-off label.
    pub indication: String,
}

/// Draws the trend as an SVG document; an empty trend draws a "no data yet" panel.
pub fn trend_chart(input: &TrendChart) -> String {
    let title = format!("CTC trend for {}", input.patient_label);
    let mut points: Vec<&TrendChartPoint> = input
        .points
        .iter()
        .filter(|p| p.per_7_5ml.is_finite() && p.per_7_5ml_ci95.iter().all(|v| v.is_finite()))
        .collect();
    if points.is_empty() {
        return placeholder(
            "trend",
            &title,
            "No data yet: no results for this patient.",
            TREND_SIZE_PX,
        );
    }
    points.sort_by_key(|p| p.drawn_at_unix_s);
    let mut svg = String::new();
    let drawn = draw(&mut svg, input, &points);
    match drawn {
        Ok(hotspots) => {
            let cutoff = input
                .cutoff_per_7_5ml
                .map(|c| {
                    format!(
                        " The {} cut-off is {} CTC per 7.5 mL.",
                        input.indication,
                        tick(c)
                    )
                })
                .unwrap_or_default();
            let desc = format!(
                "{} results from {} to {}, CTC per 7.5 mL with 95 % intervals.{cutoff}",
                points.len(),
                points[0].drawn_at,
                points[points.len() - 1].drawn_at
            );
            finish(&svg, "trend", &title, &desc, &hotspots)
        }
        Err(error) => placeholder(
            "trend",
            &title,
            &format!("The chart could not be drawn: {error}"),
            TREND_SIZE_PX,
        ),
    }
}

fn category_words(category: &str) -> &str {
    match category {
        "quantified" => "Quantified",
        "below_loq" => "Detected, below LoQ",
        "not_detected" => "Not detected",
        other => other,
    }
}

fn draw(
    svg: &mut String,
    input: &TrendChart,
    points: &[&TrendChartPoint],
) -> Result<Vec<Hotspot>, Box<dyn std::error::Error>> {
    let days: Vec<f64> = points
        .iter()
        .map(|p| p.drawn_at_unix_s as f64 / SECONDS_PER_DAY)
        .collect();
    let (x_low, x_high) =
        padded_range(days.iter().copied(), 0.06).expect("points is non-empty and finite");
    // Draws on one day (or within a few days) get a month-wide axis around them: the padding of a
    // single value is proportional to its size, which for days since 1970 is years.
    let (first, last) = days
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), d| {
            (lo.min(*d), hi.max(*d))
        });
    let (x_low, x_high) = if last - first < 6.0 {
        let middle = (first + last) / 2.0;
        (middle - 15.0, middle + 15.0)
    } else {
        (x_low, x_high)
    };
    let y_top = points
        .iter()
        .map(|p| p.per_7_5ml_ci95[1].max(p.per_7_5ml))
        .chain(input.cutoff_per_7_5ml)
        .fold(1.0_f64, f64::max)
        * 1.18;

    let present = |category: &str| points.iter().any(|p| p.category == category);
    let mut legend = Vec::new();
    if let Some(cutoff) = input.cutoff_per_7_5ml.filter(|c| c.is_finite()) {
        legend.push(LegendItem {
            mark: LegendMark::Dashed(palette::RED),
            label: format!(
                "Cut-off ({}): {} CTC/7.5 mL",
                input.indication,
                tick(cutoff)
            ),
        });
    }
    if present("quantified") {
        legend.push(LegendItem {
            mark: LegendMark::Dot(palette::BLUE),
            label: "Quantified (bar: 95 % interval)".into(),
        });
    }
    if present("below_loq") {
        legend.push(LegendItem {
            mark: LegendMark::Ring(palette::ORANGE),
            label: "Detected, below LoQ".into(),
        });
    }
    if present("not_detected") {
        legend.push(LegendItem {
            mark: LegendMark::DownTriangle(palette::GREY),
            label: "Not detected (at most the upper bound)".into(),
        });
    }
    if points.iter().any(|p| p.corrected) {
        legend.push(LegendItem {
            mark: LegendMark::Ring(palette::INK),
            label: "Corrected (current version; the original is on the run's page)".into(),
        });
    }

    let root = SVGBackend::with_string(svg, TREND_SIZE_PX).into_drawing_area();
    root.fill(&WHITE)?;
    let legend_px = legend_rows(&legend, TREND_SIZE_PX.0) * LEGEND_ROW_PX + 6;
    let (plot_area, legend_area) = root.split_vertically(TREND_SIZE_PX.1 - legend_px);
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(18)
        .caption(
            "CTC per 7.5 mL over time (95 % intervals)",
            (FONT, CAPTION_PT).into_font().color(&palette::INK),
        )
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(x_low..x_high, 0.0..y_top)?;
    let date_label = |day: &f64| {
        let seconds = (day * SECONDS_PER_DAY).round() as i64;
        time::OffsetDateTime::from_unix_timestamp(seconds)
            .ok()
            .and_then(|t| {
                t.format(time::macros::format_description!(
                    "[day] [month repr:short] [year]"
                ))
                .ok()
            })
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .x_labels(6)
        .y_labels(8)
        .x_label_formatter(&date_label)
        .y_label_formatter(&|v| tick(*v))
        .y_desc("CTC per 7.5 mL")
        .x_desc("Draw date")
        .label_style((FONT, LABEL_PT).into_font().color(&palette::INK))
        .axis_desc_style((FONT, LABEL_PT).into_font().color(&palette::INK))
        .light_line_style(palette::GRID.mix(0.0))
        .bold_line_style(palette::GRID)
        .axis_style(palette::INK)
        .draw()?;

    if let Some(cutoff) = input.cutoff_per_7_5ml.filter(|c| c.is_finite()) {
        chart.draw_series(DashedLineSeries::new(
            [(x_low, cutoff), (x_high, cutoff)],
            12,
            8,
            palette::RED.stroke_width(3),
        ))?;
    }

    // The connecting line goes through point estimates of detected counts only.
    let line: Vec<(f64, f64)> = points
        .iter()
        .zip(&days)
        .map(|(p, day)| {
            (
                *day,
                if p.category == "not_detected" {
                    0.0
                } else {
                    p.per_7_5ml
                },
            )
        })
        .collect();
    chart.draw_series(LineSeries::new(
        line,
        palette::BLUE.mix(0.35).stroke_width(2),
    ))?;

    let series = |category: &'static str| {
        points
            .iter()
            .zip(&days)
            .filter(move |(p, _)| p.category == category)
    };

    if series("quantified").next().is_some() {
        chart.draw_series(series("quantified").map(|(p, day)| {
            ErrorBar::new_vertical(
                *day,
                p.per_7_5ml_ci95[0],
                p.per_7_5ml,
                p.per_7_5ml_ci95[1],
                palette::BLUE.stroke_width(2),
                14,
            )
        }))?;
        chart.draw_series(
            series("quantified")
                .map(|(p, day)| Circle::new((*day, p.per_7_5ml), 7, palette::BLUE.filled())),
        )?;
    }
    if series("below_loq").next().is_some() {
        chart.draw_series(series("below_loq").map(|(p, day)| {
            ErrorBar::new_vertical(
                *day,
                p.per_7_5ml_ci95[0],
                p.per_7_5ml,
                p.per_7_5ml_ci95[1],
                palette::ORANGE.stroke_width(2),
                14,
            )
        }))?;
        chart.draw_series(series("below_loq").map(|(p, day)| {
            EmptyElement::at((*day, p.per_7_5ml))
                + Circle::new((0, 0), 8, WHITE.filled())
                + Circle::new((0, 0), 8, palette::ORANGE.stroke_width(3))
        }))?;
    }
    if series("not_detected").next().is_some() {
        chart.draw_series(series("not_detected").map(|(p, day)| {
            PathElement::new(
                vec![(*day, 0.0), (*day, p.per_7_5ml_ci95[1])],
                palette::GREY.stroke_width(2),
            )
        }))?;
        let triangle =
            |style: ShapeStyle| PathElement::new(vec![(-9, -7), (9, -7), (0, 9), (-9, -7)], style);
        chart.draw_series(series("not_detected").map(move |(p, day)| {
            EmptyElement::at((*day, p.per_7_5ml_ci95[1]))
                + Polygon::new(vec![(-9, -7), (9, -7), (0, 9)], WHITE.filled())
                + triangle(palette::GREY.stroke_width(3))
        }))?;
    }
    let other: Vec<_> = points
        .iter()
        .zip(&days)
        .filter(|(p, _)| {
            !matches!(
                p.category.as_str(),
                "quantified" | "below_loq" | "not_detected"
            )
        })
        .collect();
    if !other.is_empty() {
        chart.draw_series(
            other
                .iter()
                .map(|(p, day)| Cross::new((**day, p.per_7_5ml), 8, palette::INK.stroke_width(3))),
        )?;
    }
    let corrected: Vec<(f64, f64)> = points
        .iter()
        .zip(&days)
        .filter(|(p, _)| p.corrected)
        .map(|(p, day)| {
            let y = if p.category == "not_detected" {
                p.per_7_5ml_ci95[1]
            } else {
                p.per_7_5ml
            };
            (*day, y)
        })
        .collect();
    if !corrected.is_empty() {
        chart.draw_series(
            corrected
                .into_iter()
                .map(|at| Circle::new(at, 14, palette::INK.stroke_width(2))),
        )?;
    }
    draw_legend(&legend_area, &legend)?;

    let hotspots = points
        .iter()
        .zip(&days)
        .map(|(p, day)| {
            let y = if p.category == "not_detected" {
                p.per_7_5ml_ci95[1]
            } else {
                p.per_7_5ml
            };
            let (x_px, y_px) = chart.backend_coord(&(*day, y));
            Hotspot {
                x_px,
                y_px,
                class: format!(
                    "point point-{} run-{}{}",
                    p.category,
                    p.run_id,
                    if p.corrected { " point-corrected" } else { "" }
                ),
                title: format!(
                    "{}: {}, {} CTC/7.5 mL (95 % CI {}–{}), run {}{}",
                    p.drawn_at,
                    category_words(&p.category),
                    tick(p.per_7_5ml),
                    tick(p.per_7_5ml_ci95[0]),
                    tick(p.per_7_5ml_ci95[1]),
                    p.run_id,
                    if p.corrected { ", corrected" } else { "" }
                ),
            }
        })
        .collect();
    root.present()?;
    Ok(hotspots)
}
