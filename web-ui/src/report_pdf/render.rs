//! Draws laid-out pages into a PDF with `krilla`: text in DejaVu Sans (compiled in, the subset
//! used embedded with its Unicode map, so the text extracts), lines as strokes.

use krilla::Document;
use krilla::color::luma;
use krilla::geom::{PathBuilder, Point};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke, StrokeDash};
use krilla::text::{Font, TextDirection};

use super::layout::{Item, Page};

/// DejaVu Sans (Bitstream Vera licence; `web-ui/fonts/`).
static FONT: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");

/// Why no PDF could be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The embedded font did not load.
    #[error("the report font does not load")]
    Font,
    /// A page size krilla refuses.
    #[error("the page size {0} × {1} pt is not usable")]
    PageSize(f32, f32),
    /// The PDF writer failed.
    #[error("the PDF writer failed: {0}")]
    Writer(String),
}

/// The PDF of `pages`, each `size` points, titled `title`.
pub fn render(pages: &[Page], size: (f32, f32), title: &str) -> Result<Vec<u8>, PdfError> {
    let font = Font::new(FONT.into(), 0).ok_or(PdfError::Font)?;
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(title.to_owned())
            .creator("Ferrocount".to_owned()),
    );
    let settings =
        PageSettings::from_wh(size.0, size.1).ok_or(PdfError::PageSize(size.0, size.1))?;
    for page in pages {
        let mut pdf_page = document.start_page_with(settings.clone());
        let mut surface = pdf_page.surface();
        for item in &page.items {
            match item {
                Item::Text {
                    x,
                    y,
                    size,
                    muted,
                    text,
                } => {
                    surface.set_stroke(None);
                    surface.set_fill(Some(Fill {
                        paint: luma::Color::new(if *muted { 90 } else { 0 }).into(),
                        ..Fill::default()
                    }));
                    surface.draw_text(
                        Point::from_xy(*x, *y),
                        font.clone(),
                        *size,
                        text,
                        false,
                        TextDirection::Auto,
                    );
                }
                Item::Line {
                    points,
                    width,
                    dashed,
                } => {
                    let mut path = PathBuilder::new();
                    let mut points = points.iter();
                    let Some(&(x0, y0)) = points.next() else {
                        continue;
                    };
                    path.move_to(x0, y0);
                    for &(x, y) in points {
                        path.line_to(x, y);
                    }
                    let Some(path) = path.finish() else {
                        continue;
                    };
                    surface.set_fill(None);
                    surface.set_stroke(Some(Stroke {
                        width: *width,
                        paint: luma::Color::new(if *dashed { 0 } else { 60 }).into(),
                        dash: dashed.then(|| StrokeDash {
                            array: vec![2.5, 1.5],
                            offset: 0.0,
                        }),
                        ..Stroke::default()
                    }));
                    surface.draw_path(&path);
                }
            }
        }
        surface.finish();
        pdf_page.finish();
    }
    document
        .finish()
        .map_err(|e| PdfError::Writer(format!("{e:?}")))
}
