//! Rendering tests shared by all charts: well-formed SVG, the expected marks, no NaN, and the
//! "no data yet" panel for empty inputs.

use super::*;

/// Parses the SVG (well-formedness) and returns it as a document.
fn parse(svg: &str) -> roxmltree::Document<'_> {
    match roxmltree::Document::parse(svg) {
        Ok(document) => document,
        Err(error) => panic!("chart is not well-formed XML: {error}\n{svg}"),
    }
}

/// Elements whose `class` attribute contains `class`.
fn count_class(document: &roxmltree::Document<'_>, class: &str) -> usize {
    document
        .descendants()
        .filter(|n| {
            n.attribute("class")
                .is_some_and(|c| c.split_whitespace().any(|w| w == class))
        })
        .count()
}

fn assert_sound(svg: &str, kind: &str) {
    let document = parse(svg);
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.attribute("role"), Some("img"));
    assert!(
        root.attribute("class")
            .is_some_and(|c| c.contains(&format!("chart-{kind}")))
    );
    let title = root
        .children()
        .find(|n| n.has_tag_name("title"))
        .and_then(|n| n.text());
    assert!(title.is_some_and(|t| !t.is_empty()), "chart has no <title>");
    assert!(
        root.children().any(|n| n.has_tag_name("desc")),
        "chart has no <desc>"
    );
    let lower = svg.to_ascii_lowercase();
    assert!(!lower.contains("nan"), "NaN in the chart");
    assert!(!lower.contains("inf\""), "infinity in the chart");
}

fn assert_no_data(svg: &str, kind: &str) {
    assert_sound(svg, kind);
    assert!(svg.contains("chart-empty"));
    assert!(svg.contains("No data yet"));
}

fn trend_point(day: i64, per_7_5ml: f64, ci: [f64; 2], category: &str) -> TrendChartPoint {
    TrendChartPoint {
        drawn_at_unix_s: 1_767_225_600 + day * 86_400,
        drawn_at: format!("day {day}"),
        per_7_5ml,
        per_7_5ml_ci95: ci,
        category: category.to_string(),
        run_id: day,
        corrected: false,
        released: true,
    }
}

fn trend_input() -> TrendChart {
    TrendChart {
        patient_label: "MRN <0042>".into(),
        points: vec![
            trend_point(0, 12.4, [8.1, 18.0], "quantified"),
            trend_point(30, 6.2, [3.0, 11.2], "quantified"),
            trend_point(61, 2.1, [0.6, 5.4], "below_loq"),
            trend_point(92, 0.0, [0.0, 2.8], "not_detected"),
        ],
        cutoff_per_7_5ml: Some(5.0),
        indication: "breast".into(),
        events: vec![],
    }
}

/// The y pixel of the hotspot of `class` (one mark).
fn hotspot_y(svg: &str, class: &str) -> f64 {
    let document = parse(svg);
    let node = document
        .descendants()
        .find(|n| {
            n.attribute("class")
                .is_some_and(|c| c.split_whitespace().any(|w| w == class))
        })
        .unwrap_or_else(|| panic!("a mark of class {class}"));
    node.attribute("cy").expect("cy").parse().expect("a number")
}

#[test]
fn trend_reads_0_to_10_as_clearly_as_10_to_100() {
    // On the scale the 0–10 range is as tall as 10–100 (log of 1 + count): a change from 1 to
    // 10 moves the mark as far as one from 10 to 100 (a linear axis squeezed it tenfold).
    let mut input = trend_input();
    input.points = vec![
        trend_point(0, 1.0, [1.0, 1.0], "quantified"),
        trend_point(30, 10.0, [10.0, 10.0], "quantified"),
        trend_point(60, 100.0, [100.0, 100.0], "quantified"),
    ];
    let svg = trend_chart(&input);
    assert_sound(&svg, "trend");
    let (y1, y10, y100) = (
        hotspot_y(&svg, "run-0"),
        hotspot_y(&svg, "run-30"),
        hotspot_y(&svg, "run-60"),
    );
    let low = y1 - y10;
    let high = y10 - y100;
    assert!(low > 0.0 && high > 0.0, "{y1} {y10} {y100}");
    // log10(11/2) : log10(101/11) = 0.740 : 0.963.
    assert!(low / high > 0.7, "0–10 gets {low} px, 10–100 {high} px");
    assert!(
        svg.contains("logarithmic"),
        "the axis says how it is scaled"
    );
}

#[test]
fn trend_boxes_and_labels_unreleased_results_and_spreads_same_day_draws() {
    let mut input = trend_input();
    input.points = vec![
        trend_point(0, 3.0, [1.0, 6.0], "quantified"),
        TrendChartPoint {
            drawn_at_unix_s: 1_767_225_600 + 3_600,
            run_id: 7,
            released: false,
            ..trend_point(0, 3.0, [1.0, 6.0], "quantified")
        },
    ];
    let svg = trend_chart(&input);
    assert_sound(&svg, "trend");
    let document = parse(&svg);
    assert_eq!(count_class(&document, "point-preliminary"), 1);
    assert!(
        svg.contains(">\npreliminary\n</text>"),
        "labelled in words on the chart"
    );
    assert!(
        svg.contains("Preliminary: not released"),
        "and in the legend"
    );
    assert!(
        svg.contains("preliminary (not released)"),
        "and in its tooltip"
    );
    let xs: Vec<f64> = document
        .descendants()
        .filter(|n| {
            n.attribute("class")
                .is_some_and(|c| c.split_whitespace().any(|w| w == "point"))
        })
        .map(|n| n.attribute("cx").expect("cx").parse().expect("a number"))
        .collect();
    assert_eq!(xs.len(), 2);
    assert!(
        (xs[0] - xs[1]).abs() >= 16.0,
        "two draws of one day stand apart: {xs:?}"
    );
}

#[test]
fn trend_draws_treatment_markers_with_their_words() {
    let mut input = trend_input();
    input.events = vec![TrendEvent {
        day_unix_s: 1_767_225_600 + 45 * 86_400,
        day: "2026-02-15".into(),
        label: "Started <docetaxel>".into(),
    }];
    let svg = trend_chart(&input);
    assert_sound(&svg, "trend");
    assert!(
        svg.contains("Started &lt;docetaxel&gt;"),
        "escaped, on the chart"
    );
    assert!(svg.contains("Treatment or event"), "in the legend");
    assert!(
        svg.contains("2026-02-15: Started &lt;docetaxel&gt;."),
        "and in the description"
    );
}

#[test]
fn trend_draws_a_point_per_run_each_category_distinctly_and_the_cutoff() {
    let svg = trend_chart(&trend_input());
    assert_sound(&svg, "trend");
    let document = parse(&svg);
    assert_eq!(count_class(&document, "point"), 4);
    assert_eq!(count_class(&document, "point-quantified"), 2);
    assert_eq!(count_class(&document, "point-below_loq"), 1);
    assert_eq!(count_class(&document, "point-not_detected"), 1);
    // The legend names every category drawn and the cut-off.
    for words in [
        "Cut-off (breast): 5 CTC/7.5 mL",
        "Quantified",
        "Detected, below LoQ",
        "Not detected",
    ] {
        assert!(svg.contains(words), "legend lacks {words:?}");
    }
    // The patient label is escaped, not injected.
    assert!(svg.contains("MRN &lt;0042&gt;"));
    // The cut-off is dashed: many short red segments at the same height.
    let red_segments = document
        .descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some("#B00020"))
        .count();
    assert!(
        red_segments >= 10,
        "cut-off drawn as {red_segments} red segments, not a dashed line"
    );
}

#[test]
fn a_corrected_result_is_circled_named_in_the_legend_and_its_tooltip() {
    let plain = trend_chart(&trend_input());
    assert!(
        !plain.contains("Corrected"),
        "no correction, no legend entry"
    );
    let mut input = trend_input();
    input.points[1].corrected = true;
    let svg = trend_chart(&input);
    assert_sound(&svg, "trend");
    let document = parse(&svg);
    assert_eq!(count_class(&document, "point-corrected"), 1);
    assert_eq!(
        count_class(&document, "point"),
        4,
        "still one point per run"
    );
    assert!(
        svg.contains("Corrected (current version"),
        "the legend says so"
    );
    assert!(svg.contains("run 30, corrected"), "the tooltip says so");
    let rings = |svg: &str| {
        parse(svg)
            .descendants()
            .filter(|n| {
                // Drawn marks, not the transparent hotspots (which carry a class).
                n.has_tag_name("circle")
                    && n.attribute("r") == Some("14")
                    && n.attribute("class").is_none()
            })
            .count()
    };
    assert_eq!(rings(&svg), 1, "one ring around the corrected point");
    assert_eq!(rings(&plain), 0);
}

#[test]
fn trend_places_not_detected_at_its_upper_bound_and_higher_counts_higher() {
    let svg = trend_chart(&trend_input());
    let document = parse(&svg);
    let y_of = |run: &str| -> f64 {
        document
            .descendants()
            .find(|n| n.attribute("class").is_some_and(|c| c.contains(run)))
            .and_then(|n| n.attribute("cy"))
            .and_then(|y| y.parse().ok())
            .unwrap_or(f64::NAN)
    };
    // SVG y grows downwards: 12.4 is above 6.2, which is above the not-detected bound 2.8.
    assert!(y_of("run-0") < y_of("run-30"));
    assert!(y_of("run-30") < y_of("run-92"));
    // 2.1 (below LoQ) sits below the not-detected upper bound 2.8.
    assert!(y_of("run-61") > y_of("run-92"));
}

#[test]
fn trend_survives_nan_a_single_point_and_no_points() {
    let mut input = trend_input();
    input
        .points
        .push(trend_point(120, f64::NAN, [f64::NAN, 1.0], "quantified"));
    let svg = trend_chart(&input);
    assert_sound(&svg, "trend");
    assert_eq!(count_class(&parse(&svg), "point"), 4);

    input.points.truncate(1);
    input.cutoff_per_7_5ml = None;
    let single = trend_chart(&input);
    assert_sound(&single, "trend");
    assert_eq!(count_class(&parse(&single), "point"), 1);
    // One draw gets an axis of about a month around it, not years: every year on the axis is
    // that of the draw or the one before (the points lie in January 2026).
    let document = parse(&single);
    let years: Vec<i32> = document
        .descendants()
        .filter_map(|node| node.text())
        .flat_map(|text| text.split(|c: char| !c.is_ascii_digit()))
        .filter(|token| token.len() == 4 && token.starts_with("20"))
        .filter_map(|token| token.parse().ok())
        .collect();
    assert!(!years.is_empty(), "the axis names years");
    assert!(
        years.iter().all(|year| (2025..=2026).contains(year)),
        "{years:?}"
    );

    input.points.clear();
    assert_no_data(&trend_chart(&input), "trend");
}

fn decay_input(echoes: usize) -> DecayChart {
    let fit = FittedDecay {
        amplitude: 1000.0,
        t2_ms: 80.0,
        offset: 5.0,
        echoes_skipped: 1,
    };
    let times_ms: Vec<f64> = (1..=echoes).map(|i| i as f64 * 2.0).collect();
    // A known wiggle on top of the fitted curve: the residual panel must show it.
    let amplitudes = times_ms
        .iter()
        .enumerate()
        .map(|(i, t)| fit.at(*t) + if i % 2 == 0 { 3.0 } else { -3.0 })
        .collect();
    DecayChart {
        label: "Tube 2 (quad), replicate 3".into(),
        times_ms,
        amplitudes,
        fit: Some(fit),
    }
}

#[test]
fn decay_draws_every_echo_the_fit_and_residuals() {
    let svg = decay_chart(&decay_input(100));
    assert_sound(&svg, "decay");
    let document = parse(&svg);
    let circles = |filled: bool| {
        document
            .descendants()
            .filter(|n| n.has_tag_name("circle") && (n.attribute("fill") != Some("none")) == filled)
            .count()
    };
    // 99 fitted echoes and 99 residuals (+1 legend dot); the skipped first echo is a hollow ring
    // with no residual (+1 legend ring).
    assert_eq!(circles(true), 99 + 99 + 1);
    assert_eq!(circles(false), 1 + 1);
    assert!(svg.contains("Left out of the fit"));
    assert!(svg.contains("Fit: T2 = 80 ms"));
    assert!(svg.contains("Residual"));
}

#[test]
fn decay_bins_long_trains_and_handles_no_fit_and_no_echoes() {
    let long = decay_chart(&decay_input(6000));
    assert_sound(&long, "decay");
    assert!(long.contains("bin means of the 5999 fitted echoes"));
    let circles = parse(&long)
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .count();
    // Bin means and their residuals, the skipped echo, two legend marks.
    assert!(circles <= 2 * MAX_DRAWN_ECHOES + 1 + 2);

    let mut unfitted = decay_input(50);
    unfitted.fit = None;
    let svg = decay_chart(&unfitted);
    assert_sound(&svg, "decay");
    assert!(!svg.contains("Residual"));

    unfitted.times_ms.clear();
    assert_no_data(&decay_chart(&unfitted), "decay");
}

#[test]
fn t2_distribution_marks_the_log_mean() {
    let t2_ms: Vec<f64> = (0..60).map(|i| 10f64.powf(0.5 + i as f64 * 0.05)).collect();
    let amplitudes = t2_ms
        .iter()
        .map(|t: &f64| (-(t.log10() - 2.0).powi(2) / 0.05).exp())
        .collect();
    let input = T2DistributionChart {
        label: "Tube 1".into(),
        t2_ms,
        amplitudes,
        log_mean_t2_ms: Some(100.0),
    };
    let svg = t2_distribution_chart(&input);
    assert_sound(&svg, "t2-distribution");
    assert!(svg.contains("Log-mean T2 = 100 ms"));
    assert_eq!(count_class(&parse(&svg), "log-mean"), 1);

    let empty = T2DistributionChart {
        label: "Tube 1".into(),
        t2_ms: vec![],
        amplitudes: vec![],
        log_mean_t2_ms: None,
    };
    assert_no_data(&t2_distribution_chart(&empty), "t2-distribution");
}

fn lj_input() -> LeveyJenningsChart {
    let values = [100.0, 102.0, 98.5, 101.0, 107.0, 99.0, 94.5, 100.5];
    let points = values
        .iter()
        .enumerate()
        .map(|(i, v)| LjPoint {
            measured_at: format!("03-{:02}", i + 1),
            value: *v,
            violations: match i {
                4 => vec![LjViolation {
                    rule: "1-3s".into(),
                    rejects: true,
                }],
                6 => vec![LjViolation {
                    rule: "1-2s".into(),
                    rejects: false,
                }],
                _ => vec![],
            },
        })
        .collect();
    LeveyJenningsChart {
        material: "Phantom T2 high".into(),
        lot: "PH-24".into(),
        unit: "ms".into(),
        mean: 100.0,
        sd: 2.0,
        points,
    }
}

#[test]
fn levey_jennings_draws_sd_lines_points_and_named_violations() {
    let svg = levey_jennings_chart(&lj_input());
    assert_sound(&svg, "levey-jennings");
    let document = parse(&svg);
    assert_eq!(count_class(&document, "point"), 8);
    assert_eq!(count_class(&document, "violation"), 2);
    assert_eq!(count_class(&document, "violation-reject"), 1);
    assert_eq!(count_class(&document, "violation-warning"), 1);
    for line in [
        "mean 100.0",
        "+1 SD 102.0",
        "−1 SD 98.0",
        "+2 SD 104.0",
        "−2 SD 96.0",
        "+3 SD 106.0",
        "−3 SD 94.0",
    ] {
        assert!(svg.contains(line), "missing line label {line:?}");
    }
    let mut fine = lj_input();
    fine.sd = 1.5;
    let fine_svg = levey_jennings_chart(&fine);
    assert!(
        fine_svg.contains("+3 SD 104.5") && fine_svg.contains("−1 SD 98.5"),
        "SD lines rounded away"
    );
    // The rule is named in visible text and in the tooltip.
    let shown = |rule: &str| {
        document
            .descendants()
            .any(|n| n.has_tag_name("text") && n.text().is_some_and(|t| t.trim() == rule))
    };
    assert!(shown("1-3s") && shown("1-2s"), "rules not shown as text");
    assert!(svg.contains("REJECT: violates 1-3s"));
    assert!(svg.contains("warning: 1-2s"));
}

#[test]
fn levey_jennings_without_points_or_target_says_so() {
    let mut input = lj_input();
    input.sd = 0.0;
    let no_target = levey_jennings_chart(&input);
    assert_sound(&no_target, "levey-jennings");
    assert!(no_target.contains("No target yet"));
    input.points.clear();
    assert_no_data(&levey_jennings_chart(&input), "levey-jennings");
}

fn calibration_input() -> CalibrationChart {
    let mut points = Vec::new();
    for cells in [0.0, 5.0, 10.0, 25.0, 50.0, 100.0] {
        for replicate in 0..3 {
            points.push(CalibrationPoint {
                cells,
                delta_r2_per_s: 0.02 + 0.004 * cells + 0.003 * (replicate as f64 - 1.0),
            });
        }
    }
    let band_95 = (0..=20)
        .map(|i| i as f64 * 5.0)
        .map(|c| [c, 0.02 + 0.004 * c - 0.006, 0.02 + 0.004 * c + 0.006])
        .collect();
    CalibrationChart {
        lot: "RL-2611".into(),
        points,
        line: Some(CalibrationLine {
            slope_per_s_per_cell: 0.004,
            intercept_per_s: 0.02,
            band_95,
        }),
        lob_cells: Some(1.2),
        lod_cells: Some(3.4),
        loq_cells: Some(8.0),
        points_label: None,
    }
}

#[test]
fn calibration_draws_replicates_fit_band_and_limits() {
    let svg = calibration_chart(&calibration_input());
    assert_sound(&svg, "calibration");
    let document = parse(&svg);
    assert_eq!(count_class(&document, "point"), 18);
    for limit in ["limit-lob", "limit-lod", "limit-loq"] {
        assert_eq!(count_class(&document, limit), 1, "{limit}");
    }
    assert!(svg.contains("LoB 1.2") && svg.contains("LoD 3.4") && svg.contains("LoQ 8"));
    assert!(svg.contains("95 % band"));
    assert!(
        document.descendants().any(|n| n.has_tag_name("polygon")),
        "band not drawn"
    );
    assert!(svg.contains("Weighted fit"));

    let empty = CalibrationChart {
        points: vec![],
        line: None,
        lob_cells: None,
        lod_cells: None,
        loq_cells: None,
        points_label: None,
        lot: "X".into(),
    };
    assert_no_data(&calibration_chart(&empty), "calibration");
}
