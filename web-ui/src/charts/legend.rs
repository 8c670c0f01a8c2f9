//! A legend drawn in its own strip below a chart, so it never hides data (plotters' built-in
//! series legend sits inside the plot area, over whatever points are there).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::svg_document::{FONT, NOTE_PT, palette};

/// Height of one legend row in pixels.
pub(crate) const LEGEND_ROW_PX: u32 = 30;
/// Left edge of the first item (lines up with the plot area after the y labels).
const LEFT_PX: i32 = 84;
/// Estimated width of one character of the legend font (plotters' text metrics are guesses
/// without fonts; this errs wide so items do not collide).
const CHAR_PX: i32 = 9;

/// What the legend shows beside a label.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LegendMark {
    /// A solid line.
    Line(RGBColor),
    /// A dashed line.
    Dashed(RGBColor),
    /// A filled circle.
    Dot(RGBColor),
    /// A hollow circle.
    Ring(RGBColor),
    /// A hollow triangle pointing down.
    DownTriangle(RGBColor),
    /// A shaded band.
    Band(RGBColor),
    /// A hollow square (a mark boxed in).
    Square(RGBColor),
}

/// One legend entry.
#[derive(Clone, Debug)]
pub(crate) struct LegendItem {
    /// The mark.
    pub mark: LegendMark,
    /// The words.
    pub label: String,
}

fn item_width(item: &LegendItem) -> i32 {
    40 + CHAR_PX * item.label.chars().count() as i32 + 24
}

/// Rows the items need across `width_px`.
pub(crate) fn legend_rows(items: &[LegendItem], width_px: u32) -> u32 {
    if items.is_empty() {
        return 0;
    }
    let mut rows = 1;
    let mut x = LEFT_PX;
    for item in items {
        let width = item_width(item);
        if x + width > width_px as i32 && x > LEFT_PX {
            rows += 1;
            x = LEFT_PX;
        }
        x += width;
    }
    rows
}

/// Draws the items left to right, wrapping into rows, on `area` (the strip below the chart).
pub(crate) fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    items: &[LegendItem],
) -> Result<(), Box<dyn std::error::Error>> {
    let (width_px, _) = area.dim_in_pixel();
    let font = (FONT, NOTE_PT)
        .into_font()
        .color(&palette::INK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let (mut x, mut y) = (LEFT_PX, LEGEND_ROW_PX as i32 / 2);
    for item in items {
        let width = item_width(item);
        if x + width > width_px as i32 && x > LEFT_PX {
            x = LEFT_PX;
            y += LEGEND_ROW_PX as i32;
        }
        match item.mark {
            LegendMark::Line(colour) => area.draw(&PathElement::new(
                vec![(x, y), (x + 28, y)],
                colour.stroke_width(3),
            ))?,
            LegendMark::Dashed(colour) => {
                for start in [x, x + 11, x + 22] {
                    area.draw(&PathElement::new(
                        vec![(start, y), (start + 7, y)],
                        colour.stroke_width(3),
                    ))?;
                }
            }
            LegendMark::Dot(colour) => area.draw(&Circle::new((x + 14, y), 7, colour.filled()))?,
            LegendMark::Ring(colour) => {
                area.draw(&Circle::new((x + 14, y), 7, colour.stroke_width(3)))?
            }
            LegendMark::DownTriangle(colour) => area.draw(&PathElement::new(
                vec![
                    (x + 5, y - 6),
                    (x + 23, y - 6),
                    (x + 14, y + 8),
                    (x + 5, y - 6),
                ],
                colour.stroke_width(3),
            ))?,
            LegendMark::Band(colour) => area.draw(&Rectangle::new(
                [(x, y - 7), (x + 28, y + 7)],
                colour.mix(0.25).filled(),
            ))?,
            LegendMark::Square(colour) => area.draw(&Rectangle::new(
                [(x + 5, y - 9), (x + 23, y + 9)],
                colour.stroke_width(2),
            ))?,
        }
        area.draw(&Text::new(item.label.clone(), (x + 38, y), font.clone()))?;
        x += width;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_legends_wrap_into_rows() {
        let item = |label: &str| LegendItem {
            mark: LegendMark::Dot(palette::BLUE),
            label: label.into(),
        };
        assert_eq!(legend_rows(&[], 900), 0);
        assert_eq!(legend_rows(&[item("a"), item("b")], 900), 1);
        let long: Vec<_> = (0..6)
            .map(|_| item("Detected, below LoQ (hollow)"))
            .collect();
        assert!(legend_rows(&long, 900) >= 3);
    }
}
