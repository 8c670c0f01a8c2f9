//! Where the report's words go on paper: pages of positioned text and lines, in points from the
//! top-left corner. No PDF here ([`super::render`] draws these), so the layout is testable as
//! data: everything on the first page, the curves on a second page only when asked.

use appliance::site::PaperSize;

use super::content::{Field, ReportText};
use crate::charts::FittedDecay;

/// One thing drawn on a page.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// Text whose baseline starts at `(x, y)`.
    Text {
        /// Left, points.
        x: f32,
        /// Baseline, points from the top.
        y: f32,
        /// Font size, points.
        size: f32,
        /// Grey (labels, the footer) rather than black.
        muted: bool,
        /// The text.
        text: String,
    },
    /// A straight line or an open polyline.
    Line {
        /// The points, in order.
        points: Vec<(f32, f32)>,
        /// Stroke width, points.
        width: f32,
        /// Dashed (a fitted curve) rather than solid.
        dashed: bool,
    },
}

/// One page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    /// What is drawn on it.
    pub items: Vec<Item>,
}

/// One replicate's decay, for the curves page.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// "Quad tube, replicate 2".
    pub label: String,
    /// Echo times, ms.
    pub times_ms: Vec<f64>,
    /// Echo amplitudes (arbitrary units).
    pub amplitudes: Vec<f64>,
    /// The stored mono-exponential fit, drawn over the echoes (`None`: the train was not
    /// fitted, or the fit failed; the label says which).
    pub fit: Option<FittedDecay>,
}

/// The page's size in points.
pub fn page_size(paper: PaperSize) -> (f32, f32) {
    let (w, h) = paper.size_mm();
    (w / 25.4 * 72.0, h / 25.4 * 72.0)
}

const MARGIN: f32 = 50.0;
const LABEL_WIDTH: f32 = 118.0;
/// A conservative width of one character of DejaVu Sans, in ems (its widest common glyphs are
/// about 0.7 em, the average about 0.55), so wrapped lines never run past the margin.
const CHAR_EM: f32 = 0.6;

/// Breaks `text` into lines of at most `width` points at `size`.
fn wrap(text: &str, width: f32, size: f32) -> Vec<String> {
    let per_line = ((width / (size * CHAR_EM)).floor() as usize).max(10);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if needed > per_line && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// A page being filled from the top.
struct Cursor {
    page: Page,
    y: f32,
    width: f32,
}

impl Cursor {
    fn text(&mut self, x: f32, size: f32, muted: bool, text: &str) {
        self.page.items.push(Item::Text {
            x,
            y: self.y,
            size,
            muted,
            text: text.to_owned(),
        });
    }

    fn rule(&mut self) {
        self.y += 6.0;
        self.page.items.push(Item::Line {
            points: vec![(MARGIN, self.y), (self.width - MARGIN, self.y)],
            width: 0.5,
            dashed: false,
        });
        self.y += 14.0;
    }

    fn heading(&mut self, text: &str) {
        self.y += 6.0;
        self.text(MARGIN, 11.5, false, text);
        self.y += 16.0;
    }

    fn fields(&mut self, fields: &[Field]) {
        let value_x = MARGIN + LABEL_WIDTH;
        let value_width = self.width - MARGIN - value_x;
        for f in fields {
            self.text(MARGIN, 9.0, true, &f.label);
            for (i, line) in wrap(&f.value, value_width, 10.5).iter().enumerate() {
                if i > 0 {
                    self.y += 13.0;
                }
                self.text(value_x, 10.5, false, line);
            }
            self.y += 15.0;
        }
    }

    fn paragraph(&mut self, size: f32, muted: bool, text: &str) {
        for line in wrap(text, self.width - 2.0 * MARGIN, size) {
            self.text(MARGIN, size, muted, &line);
            self.y += size * 1.3;
        }
    }
}

/// The report's pages: everything on the first; the replicate curves on a second only when
/// `curves` is given. Each page carries its footer and "Page k of n".
pub fn pages(report: &ReportText, paper: PaperSize, curves: Option<&[Curve]>) -> Vec<Page> {
    let (width, height) = page_size(paper);
    let mut c = Cursor {
        page: Page::default(),
        y: MARGIN + 12.0,
        width,
    };
    // Header: the laboratory and instrument at the left, the status at the right.
    c.text(MARGIN, 15.0, false, &report.lab_name);
    let status = report.status.as_str();
    let status_x = width - MARGIN - status.chars().count() as f32 * 16.0 * 0.68;
    c.text(status_x, 16.0, false, status);
    c.y += 14.0;
    for line in &report.lab_address {
        c.text(MARGIN, 9.0, true, line);
        c.y += 11.5;
    }
    c.text(MARGIN, 9.0, true, &report.instrument);
    c.rule();
    c.text(MARGIN, 13.0, false, "Circulating tumour cell count");
    c.y += 14.0;
    c.paragraph(9.5, false, &report.status_words);
    c.heading("Patient and specimen");
    c.fields(&report.patient);
    c.heading("Result");
    c.fields(&report.result);
    for note in &report.result_notes {
        c.paragraph(9.5, false, note);
    }
    c.heading("Quality control and calibration");
    c.fields(&report.references);
    c.heading("Signature");
    c.fields(&report.signature);

    let mut pages = vec![c.page];
    if let Some(curves) = curves {
        pages.push(curves_page(curves, width));
    }
    let total = pages.len();
    for (index, page) in pages.iter_mut().enumerate() {
        let y = height - MARGIN + 14.0;
        page.items.push(Item::Line {
            points: vec![(MARGIN, y - 12.0), (width - MARGIN, y - 12.0)],
            width: 0.5,
            dashed: false,
        });
        page.items.push(Item::Text {
            x: MARGIN,
            y,
            size: 8.0,
            muted: true,
            text: report.footer.clone(),
        });
        let numbers = format!("Page {} of {total}", index + 1);
        page.items.push(Item::Text {
            x: width - MARGIN - numbers.chars().count() as f32 * 8.0 * 0.55,
            y,
            size: 8.0,
            muted: true,
            text: numbers,
        });
    }
    pages
}

/// The replicate curves, three to a row: echo amplitude against time, each scaled to its own
/// first echo.
fn curves_page(curves: &[Curve], width: f32) -> Page {
    let mut c = Cursor {
        page: Page::default(),
        y: MARGIN + 12.0,
        width,
    };
    c.text(MARGIN, 13.0, false, "Replicate decay curves");
    c.y += 14.0;
    c.paragraph(
        9.0,
        true,
        "Echo amplitude against time for each replicate, scaled to its largest echo: the measured \
         echoes as a solid line, the stored fit A·e^(−t/T2) + C dashed over the echoes it was fitted \
         to (T2 in each label).",
    );
    c.y += 6.0;
    let columns = 3;
    let gap = 14.0;
    let box_w = (width - 2.0 * MARGIN - gap * (columns as f32 - 1.0)) / columns as f32;
    let box_h = 90.0;
    for (i, curve) in curves.iter().enumerate() {
        let col = i % columns;
        let row = i / columns;
        let x0 = MARGIN + col as f32 * (box_w + gap);
        let y0 = c.y + row as f32 * (box_h + 30.0);
        c.page.items.push(Item::Text {
            x: x0,
            y: y0,
            size: 8.0,
            muted: false,
            text: curve.label.clone(),
        });
        let top = y0 + 6.0;
        c.page.items.push(Item::Line {
            points: vec![(x0, top), (x0, top + box_h), (x0 + box_w, top + box_h)],
            width: 0.5,
            dashed: false,
        });
        let t_max = curve.times_ms.iter().copied().fold(0.0_f64, f64::max);
        let a_max = curve
            .amplitudes
            .iter()
            .map(|a| a.abs())
            .fold(0.0_f64, f64::max);
        if t_max > 0.0 && a_max > 0.0 {
            let place = |t: f64, a: f64| {
                (
                    x0 + (t / t_max) as f32 * box_w,
                    top + box_h - ((a / a_max).clamp(-0.1, 1.0) as f32) * box_h,
                )
            };
            let points = curve
                .times_ms
                .iter()
                .zip(&curve.amplitudes)
                .map(|(t, a)| place(*t, *a))
                .collect();
            c.page.items.push(Item::Line {
                points,
                width: 0.5,
                dashed: false,
            });
            // The fit over the echoes it was fitted to: 60 points are smooth at this size.
            if let Some(fit) = curve.fit.as_ref().filter(|f| f.t2_ms > 0.0) {
                let skipped = curve.times_ms.get(fit.echoes_skipped).copied();
                let t_start = skipped.unwrap_or(0.0);
                let points = (0..=60)
                    .map(|i| {
                        let t = t_start + (t_max - t_start) * f64::from(i) / 60.0;
                        place(t, fit.at(t))
                    })
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .collect();
                c.page.items.push(Item::Line {
                    points,
                    width: 0.9,
                    dashed: true,
                });
            }
        }
    }
    c.page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_wrap_inside_the_margin() {
        let lines = wrap(&"word ".repeat(40), 300.0, 10.0);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.chars().count() <= 50), "{lines:?}");
        assert_eq!(wrap("", 300.0, 10.0), [""]);
    }

    #[test]
    fn the_curves_page_draws_each_stored_fit_dashed_over_its_echoes() {
        let fit = FittedDecay {
            amplitude: 100.0,
            t2_ms: 80.0,
            offset: 1.0,
            echoes_skipped: 1,
        };
        let times_ms: Vec<f64> = (1..=100).map(|i| f64::from(i) * 2.0).collect();
        let curve = |fit: Option<FittedDecay>| Curve {
            label: "quad tube, replicate 1".into(),
            amplitudes: times_ms
                .iter()
                .map(|t| 100.0 * (-t / 80.0).exp() + 1.0)
                .collect(),
            times_ms: times_ms.clone(),
            fit,
        };
        let page = curves_page(&[curve(Some(fit.clone())), curve(None)], 595.0);
        let dashed: Vec<&Vec<(f32, f32)>> = page
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Line {
                    points,
                    dashed: true,
                    ..
                } => Some(points),
                _ => None,
            })
            .collect();
        assert_eq!(dashed.len(), 1, "one fit line, for the fitted curve only");
        let fit_line = dashed[0];
        assert_eq!(fit_line.len(), 61);
        // It starts at the first echo fitted (the second), not at the first echo, and ends at
        // the last echo, inside the first curve's box.
        let solid = page.items.iter().find_map(|item| match item {
            Item::Line {
                points,
                dashed: false,
                ..
            } if points.len() == 100 => Some(points),
            _ => None,
        });
        let echoes = solid.expect("the measured echoes");
        assert!((fit_line[0].0 - echoes[1].0).abs() < 1e-3);
        assert!((fit_line[60].0 - echoes[99].0).abs() < 1e-3);
        // The echoes are the model here, so the fit passes through them.
        assert!((fit_line[60].1 - echoes[99].1).abs() < 0.5);
    }

    #[test]
    fn paper_sizes_in_points() {
        let (w, h) = page_size(PaperSize::A4);
        assert!((w - 595.3).abs() < 0.5 && (h - 841.9).abs() < 0.5);
        let (w, h) = page_size(PaperSize::Letter);
        assert!((w - 612.0).abs() < 0.5 && (h - 792.0).abs() < 0.5);
    }
}
