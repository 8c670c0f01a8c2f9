//! A patient's CTC trend: count per 7.5 mL over draw time with 95 % interval bars, the
//! indication's cut-off and the treatment or event markers a clinician added.
//!
//! The count axis is logarithmic in 1 + count (`log10(1 + n)`, ticks at 0, 1, 2, 5, 10, 20, 50,
//! 100, …): 0 stays on the axis and the clinically decisive 0–10 cells take as much height as
//! 10–100, so a change from 2 to 6 reads as clearly as one from 20 to 60. Results not yet
//! released are boxed and labelled "preliminary". Draws on the same day are spread a little
//! apart along the time axis so none hides another (their tooltips keep the exact time).
//!
//! Quantified counts are filled circles with their interval; "detected, below LoQ" counts are
//! hollow orange circles with their interval; "not detected" results are hollow
//! down-pointing triangles at their upper bound (the count is *at most* that), so no reader takes
//! them for a measured value. A corrected result (its current version is drawn) is circled in ink
//! and its tooltip says so. It does not decide categories or calls: those come with the points.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::legend::{LEGEND_ROW_PX, LegendItem, LegendMark, draw_legend, legend_rows};
use super::svg_document::{
    CAPTION_PT, FONT, Hotspot, LABEL_PT, NOTE_PT, finish, padded_range, palette, placeholder, tick,
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
    /// Whether the result is released (otherwise it is preliminary: boxed and labelled).
    pub released: bool,
}

/// A treatment or event marker: a dotted vertical line on its day with its label.
#[derive(Clone, Debug, PartialEq)]
pub struct TrendEvent {
    /// The day's start, seconds since the Unix epoch (UTC).
    pub day_unix_s: i64,
    /// The day as the page shows it, for the description.
    pub day: String,
    /// What happened.
    pub label: String,
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
    /// Treatment or event markers, in any order.
    pub events: Vec<TrendEvent>,
}

/// The count axis' scale: `log10(1 + n)`, so 0 is on the axis and 0–10 is as tall as 10–100.
pub fn scale(per_7_5ml: f64) -> f64 {
    (1.0 + per_7_5ml.max(0.0)).log10()
}

/// The axis' ticks up to `top` (a count): 0, 1, 2, 5, 10, 20, 50, 100, ….
fn ticks(top: f64) -> Vec<f64> {
    let mut ticks = vec![0.0];
    let mut decade = 1.0;
    while decade <= top * 1.0001 && decade < 1e9 {
        for step in [1.0, 2.0, 5.0] {
            let tick = step * decade;
            if tick <= top * 1.0001 {
                ticks.push(tick);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// The x offset (in days) of each point so that points drawn on the same calendar day stand
/// apart: `spread` days between neighbours, centred on the day's points.
fn same_day_offsets(days: &[f64], spread: f64) -> Vec<f64> {
    let mut offsets = vec![0.0; days.len()];
    let mut start = 0;
    while start < days.len() {
        let day = days[start].floor();
        let mut end = start;
        while end < days.len() && days[end].floor() == day {
            end += 1;
        }
        let n = end - start;
        if n > 1 {
            for (k, offset) in offsets[start..end].iter_mut().enumerate() {
                *offset = (k as f64 - (n as f64 - 1.0) / 2.0) * spread;
            }
        }
        start = end;
    }
    offsets
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
            let preliminary = points.iter().filter(|p| !p.released).count();
            let preliminary = if preliminary > 0 {
                format!(" {preliminary} of them preliminary (not released).")
            } else {
                String::new()
            };
            let events: String = input
                .events
                .iter()
                .map(|e| format!(" {}: {}.", e.day, e.label))
                .collect();
            let desc = format!(
                "{} results from {} to {}, CTC per 7.5 mL with 95 % intervals, on a logarithmic \
                 scale of 1 + count.{preliminary}{cutoff}{events}",
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
    let drawn_days: Vec<f64> = points
        .iter()
        .map(|p| p.drawn_at_unix_s as f64 / SECONDS_PER_DAY)
        .collect();
    let event_days: Vec<f64> = input
        .events
        .iter()
        .map(|e| e.day_unix_s as f64 / SECONDS_PER_DAY)
        .collect();
    let (x_low, x_high) = padded_range(drawn_days.iter().chain(&event_days).copied(), 0.06)
        .expect("points is non-empty and finite");
    // Draws on one day (or within a few days) get a month-wide axis around them: the padding of a
    // single value is proportional to its size, which for days since 1970 is years.
    let (first, last) = drawn_days
        .iter()
        .chain(&event_days)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), d| {
            (lo.min(*d), hi.max(*d))
        });
    let (x_low, x_high) = if last - first < 6.0 {
        let middle = (first + last) / 2.0;
        (middle - 15.0, middle + 15.0)
    } else {
        (x_low, x_high)
    };
    // Same-day draws stand 2.5 % of the axis apart (about 24 px at the chart's width).
    let offsets = same_day_offsets(&drawn_days, (x_high - x_low) * 0.025);
    let days: Vec<f64> = drawn_days
        .iter()
        .zip(&offsets)
        .map(|(d, o)| d + o)
        .collect();
    let top_count = points
        .iter()
        .map(|p| p.per_7_5ml_ci95[1].max(p.per_7_5ml))
        .chain(input.cutoff_per_7_5ml)
        .fold(10.0_f64, f64::max);
    let tick_counts = ticks(top_count * 1.3);
    let u_top = scale(top_count) + 0.12;

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
    if points.iter().any(|p| !p.released) {
        legend.push(LegendItem {
            mark: LegendMark::Square(palette::INK),
            label: "Preliminary: not released".into(),
        });
    }
    if points.iter().any(|p| p.corrected) {
        legend.push(LegendItem {
            mark: LegendMark::Ring(palette::INK),
            label: "Corrected (current version; the original is on the run's page)".into(),
        });
    }
    if !input.events.is_empty() {
        legend.push(LegendItem {
            mark: LegendMark::Dashed(palette::TEAL),
            label: "Treatment or event".into(),
        });
    }

    let root = SVGBackend::with_string(svg, TREND_SIZE_PX).into_drawing_area();
    root.fill(&WHITE)?;
    let legend_px = legend_rows(&legend, TREND_SIZE_PX.0) * LEGEND_ROW_PX + 6;
    let (plot_area, legend_area) = root.split_vertically(TREND_SIZE_PX.1 - legend_px);
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(18)
        .caption(
            "CTC per 7.5 mL over time (95 % intervals; logarithmic scale)",
            (FONT, CAPTION_PT).into_font().color(&palette::INK),
        )
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(x_low..x_high, 0.0..u_top)?;
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
        .x_label_formatter(&date_label)
        // The count axis' ticks are drawn below, at 0, 1, 2, 5, 10, … on the scaled axis.
        .y_labels(0)
        .disable_y_mesh()
        .y_desc("CTC per 7.5 mL")
        .x_desc("Draw date")
        .label_style((FONT, LABEL_PT).into_font().color(&palette::INK))
        .axis_desc_style((FONT, LABEL_PT).into_font().color(&palette::INK))
        .light_line_style(palette::GRID.mix(0.0))
        .bold_line_style(palette::GRID)
        .axis_style(palette::INK)
        .draw()?;

    for count in &tick_counts {
        let u = scale(*count);
        if u > u_top {
            continue;
        }
        chart.draw_series(LineSeries::new(
            [(x_low, u), (x_high, u)],
            palette::GRID.stroke_width(1),
        ))?;
        let (x_px, y_px) = chart.backend_coord(&(x_low, u));
        root.draw(&Text::new(
            tick(*count),
            (x_px - 8, y_px),
            (FONT, LABEL_PT)
                .into_font()
                .color(&palette::INK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }

    for (event, day) in input.events.iter().zip(&event_days) {
        chart.draw_series(DashedLineSeries::new(
            [(*day, 0.0), (*day, u_top)],
            4,
            5,
            palette::TEAL.stroke_width(2),
        ))?;
        let short: String = if event.label.chars().count() > 24 {
            event.label.chars().take(23).chain(['…']).collect()
        } else {
            event.label.clone()
        };
        chart.draw_series(std::iter::once(Text::new(
            short,
            (*day, u_top),
            (FONT, NOTE_PT)
                .into_font()
                .color(&palette::TEAL)
                .pos(Pos::new(HPos::Left, VPos::Top)),
        )))?;
    }

    if let Some(cutoff) = input.cutoff_per_7_5ml.filter(|c| c.is_finite()) {
        chart.draw_series(DashedLineSeries::new(
            [(x_low, scale(cutoff)), (x_high, scale(cutoff))],
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
                    scale(p.per_7_5ml)
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
    let bar = |p: &TrendChartPoint, day: f64, colour: RGBColor| {
        ErrorBar::new_vertical(
            day,
            scale(p.per_7_5ml_ci95[0]),
            scale(p.per_7_5ml),
            scale(p.per_7_5ml_ci95[1]),
            colour.stroke_width(2),
            14,
        )
    };

    if series("quantified").next().is_some() {
        chart.draw_series(series("quantified").map(|(p, day)| bar(p, *day, palette::BLUE)))?;
        chart
            .draw_series(series("quantified").map(|(p, day)| {
                Circle::new((*day, scale(p.per_7_5ml)), 7, palette::BLUE.filled())
            }))?;
    }
    if series("below_loq").next().is_some() {
        chart.draw_series(series("below_loq").map(|(p, day)| bar(p, *day, palette::ORANGE)))?;
        chart.draw_series(series("below_loq").map(|(p, day)| {
            EmptyElement::at((*day, scale(p.per_7_5ml)))
                + Circle::new((0, 0), 8, WHITE.filled())
                + Circle::new((0, 0), 8, palette::ORANGE.stroke_width(3))
        }))?;
    }
    if series("not_detected").next().is_some() {
        chart.draw_series(series("not_detected").map(|(p, day)| {
            PathElement::new(
                vec![(*day, 0.0), (*day, scale(p.per_7_5ml_ci95[1]))],
                palette::GREY.stroke_width(2),
            )
        }))?;
        let triangle =
            |style: ShapeStyle| PathElement::new(vec![(-9, -7), (9, -7), (0, 9), (-9, -7)], style);
        chart.draw_series(series("not_detected").map(move |(p, day)| {
            EmptyElement::at((*day, scale(p.per_7_5ml_ci95[1])))
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
        chart.draw_series(other.iter().map(|(p, day)| {
            Cross::new((**day, scale(p.per_7_5ml)), 8, palette::INK.stroke_width(3))
        }))?;
    }
    let mark_y = |p: &TrendChartPoint| {
        if p.category == "not_detected" {
            scale(p.per_7_5ml_ci95[1])
        } else {
            scale(p.per_7_5ml)
        }
    };
    let corrected: Vec<(f64, f64)> = points
        .iter()
        .zip(&days)
        .filter(|(p, _)| p.corrected)
        .map(|(p, day)| (*day, mark_y(p)))
        .collect();
    if !corrected.is_empty() {
        chart.draw_series(
            corrected
                .into_iter()
                .map(|at| Circle::new(at, 14, palette::INK.stroke_width(2))),
        )?;
    }
    // Preliminary results: boxed, and labelled in words beside the box.
    let preliminary: Vec<(f64, f64)> = points
        .iter()
        .zip(&days)
        .filter(|(p, _)| !p.released)
        .map(|(p, day)| (*day, mark_y(p)))
        .collect();
    if !preliminary.is_empty() {
        // The word goes right of the box, or left of it near the right edge (never clipped).
        let right_edge = x_low + 0.8 * (x_high - x_low);
        chart.draw_series(preliminary.iter().map(|at| {
            let (offset, anchor) = if at.0 > right_edge {
                (-15, HPos::Right)
            } else {
                (15, HPos::Left)
            };
            EmptyElement::at(*at)
                + Rectangle::new([(-12, -12), (12, 12)], palette::INK.stroke_width(2))
                + Text::new(
                    "preliminary",
                    (offset, -13),
                    (FONT, NOTE_PT)
                        .into_font()
                        .color(&palette::INK)
                        .pos(Pos::new(anchor, VPos::Center)),
                )
        }))?;
    }
    draw_legend(&legend_area, &legend)?;

    let hotspots = points
        .iter()
        .zip(&days)
        .map(|(p, day)| {
            let (x_px, y_px) = chart.backend_coord(&(*day, mark_y(p)));
            Hotspot {
                x_px,
                y_px,
                class: format!(
                    "point point-{} run-{}{}{}",
                    p.category,
                    p.run_id,
                    if p.corrected { " point-corrected" } else { "" },
                    if p.released { "" } else { " point-preliminary" }
                ),
                title: format!(
                    "{}: {}, {} CTC/7.5 mL (95 % CI {}–{}), run {}{}{}",
                    p.drawn_at,
                    category_words(&p.category),
                    tick(p.per_7_5ml),
                    tick(p.per_7_5ml_ci95[0]),
                    tick(p.per_7_5ml_ci95[1]),
                    p.run_id,
                    if p.corrected { ", corrected" } else { "" },
                    if p.released {
                        ""
                    } else {
                        ", preliminary (not released)"
                    }
                ),
            }
        })
        .collect();
    root.present()?;
    Ok(hotspots)
}
