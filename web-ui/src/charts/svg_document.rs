//! The finishing touches every chart shares: accessible `<title>`/`<desc>`, scalable sizing,
//! hover/tap hotspots with tooltips, and the "no data yet" placeholder.
//!
//! plotters draws the chart body; this module only wraps what plotters cannot express (SVG
//! metadata and `<title>` children on marks). It is not a drawing library of its own: it never
//! draws data by hand except for the invisible hotspot circles laid over marks plotters drew.

use std::fmt::Write as _;

/// Font family for every chart label: the browser's own sans-serif, so no font files are needed.
pub(crate) const FONT: &str = "sans-serif";
/// Font size for captions (plotters divides by 1.24 when writing SVG: this is ≈ 21 px).
pub(crate) const CAPTION_PT: f64 = 26.0;
/// Font size for tick labels and axis descriptions (≈ 16 px).
pub(crate) const LABEL_PT: f64 = 20.0;
/// Font size for small annotations (≈ 15 px).
pub(crate) const NOTE_PT: f64 = 18.0;

/// A transparent circle laid over a mark so a pointer hover or a screen reader finds its text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Hotspot {
    /// Centre in SVG pixels.
    pub x_px: i32,
    /// Centre in SVG pixels.
    pub y_px: i32,
    /// CSS class(es), e.g. `point point-quantified`.
    pub class: String,
    /// Tooltip text (becomes a `<title>` child).
    pub title: String,
}

/// Escapes text for XML character data and attribute values.
pub(crate) fn escape_xml(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Turns the SVG plotters wrote into the document the pages embed: fixed `width`/`height` become
/// a class (CSS scales it to its container), `role="img"` with `<title>` and `<desc>` for screen
/// readers, and the hotspots appended on top of everything.
pub(crate) fn finish(
    plotters_svg: &str,
    kind: &str,
    title: &str,
    desc: &str,
    hotspots: &[Hotspot],
) -> String {
    let Some(open_end) = plotters_svg.find('>') else {
        // plotters always writes an opening <svg ...> tag; without it there is nothing to finish.
        return placeholder(kind, title, "This chart could not be drawn.", (900, 420));
    };
    let opening = &plotters_svg[..open_end];
    let view_box = attribute(opening, "viewBox").unwrap_or("0 0 900 420");
    let body = plotters_svg[open_end + 1..]
        .trim_end()
        .strip_suffix("</svg>")
        .unwrap_or(&plotters_svg[open_end + 1..]);
    let mut svg = String::with_capacity(plotters_svg.len() + 512 + hotspots.len() * 120);
    // Named by `aria-label` and described by its `<desc>` child, never by ids: a page carries
    // several charts of one kind (replicates, control levels), and ids would repeat.
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"{view_box}\" class=\"chart chart-{kind}\" \
         role=\"img\" aria-label=\"{title}\" preserveAspectRatio=\"xMidYMid meet\">\n\
         <title>{title}</title>\n<desc>{}</desc>",
        escape_xml(desc),
        title = escape_xml(title),
    );
    svg.push_str(body);
    if !hotspots.is_empty() {
        svg.push_str("<g class=\"hotspots\">\n");
        for spot in hotspots {
            let _ = writeln!(
                svg,
                "<circle class=\"{}\" cx=\"{}\" cy=\"{}\" r=\"14\" fill=\"#000\" fill-opacity=\"0\"><title>{}</title></circle>",
                escape_xml(&spot.class),
                spot.x_px,
                spot.y_px,
                escape_xml(&spot.title)
            );
        }
        svg.push_str("</g>\n");
    }
    svg.push_str("</svg>\n");
    svg
}

/// A chart-sized frame with one centred message: what an empty chart shows instead of axes.
pub(crate) fn placeholder(kind: &str, title: &str, message: &str, size_px: (u32, u32)) -> String {
    // As wide as the chart it stands for, but short: an empty panel should not push the page down.
    let (width, height) = (size_px.0, size_px.1.min(200));
    // SVG text does not wrap: shorten what is drawn (the <title> keeps it whole).
    let fits = (width as usize / 11).max(8);
    let visible_title = if title.chars().count() > fits {
        title.chars().take(fits - 1).chain(['…']).collect()
    } else {
        title.to_string()
    };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" class=\"chart chart-{kind} chart-empty\" \
         role=\"img\" aria-label=\"{full_title}\">\n\
         <title>{full_title}</title>\n<desc>{message}</desc>\n\
         <rect x=\"1\" y=\"1\" width=\"{w}\" height=\"{h}\" fill=\"#f6f7f9\" stroke=\"#8a8f98\" stroke-dasharray=\"6 6\"/>\n\
         <text x=\"{cx}\" y=\"{ty}\" text-anchor=\"middle\" font-family=\"{FONT}\" font-size=\"21\" font-weight=\"bold\" fill=\"#1f2329\">{title}</text>\n\
         <text x=\"{cx}\" y=\"{my}\" text-anchor=\"middle\" font-family=\"{FONT}\" font-size=\"19\" fill=\"#3d434c\">{message}</text>\n\
         </svg>\n",
        full_title = escape_xml(title),
        title = escape_xml(&visible_title),
        message = escape_xml(message),
        w = width.saturating_sub(2),
        h = height.saturating_sub(2),
        cx = width / 2,
        ty = height / 2 - 14,
        my = height / 2 + 20,
    )
}

/// The value of `name="..."` inside an opening tag.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!("{name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

/// Low and high ends of an axis that shows all `values` with a margin; a single value or a flat
/// series gets a sensible span around it instead of a zero-width axis.
pub(crate) fn padded_range(
    values: impl IntoIterator<Item = f64>,
    margin_fraction: f64,
) -> Option<(f64, f64)> {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for value in values.into_iter().filter(|v| v.is_finite()) {
        low = low.min(value);
        high = high.max(value);
    }
    if low > high {
        return None;
    }
    let span = high - low;
    let pad = if span > 0.0 {
        span * margin_fraction
    } else {
        (high.abs() * 0.1).max(1.0)
    };
    Some((low - pad, high + pad))
}

/// Formats a number for an axis tick or label without spurious digits, in fixed notation
/// (readers of a ward tablet should not meet `4.0e-3`).
pub(crate) fn tick(value: f64) -> String {
    let magnitude = value.abs();
    if !value.is_finite() {
        "—".to_string()
    } else if magnitude == 0.0 {
        "0".to_string()
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        trim_zeros(format!("{value:.1}"))
    } else if magnitude >= 0.1 {
        trim_zeros(format!("{value:.2}"))
    } else {
        // Two significant digits.
        let decimals = ((-magnitude.log10()).ceil() as usize + 1).min(12);
        trim_zeros(format!("{value:.decimals$}"))
    }
}

fn trim_zeros(text: String) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Colours of the charts: dark enough to read on a tablet in a bright ward (WCAG AA on white).
pub(crate) mod palette {
    use plotters::style::RGBColor;
    /// Text and axes.
    pub const INK: RGBColor = RGBColor(0x1f, 0x23, 0x29);
    /// Measured values.
    pub const BLUE: RGBColor = RGBColor(0x0b, 0x4f, 0x9c);
    /// Fitted curves and lines.
    pub const TEAL: RGBColor = RGBColor(0x00, 0x6d, 0x5b);
    /// Cut-offs, rejections.
    pub const RED: RGBColor = RGBColor(0xb0, 0x00, 0x20);
    /// Warnings, "below LoQ".
    pub const ORANGE: RGBColor = RGBColor(0xa8, 0x4a, 0x00);
    /// Secondary lines and "not detected".
    pub const GREY: RGBColor = RGBColor(0x5c, 0x63, 0x6e);
    /// Grid lines.
    pub const GRID: RGBColor = RGBColor(0xdd, 0xe1, 0xe6);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_range_spreads_a_single_value() {
        assert_eq!(padded_range([5.0], 0.1), Some((4.0, 6.0)));
        assert_eq!(padded_range([0.0, 10.0], 0.1), Some((-1.0, 11.0)));
        assert_eq!(padded_range([f64::NAN], 0.1), None);
        assert_eq!(padded_range([], 0.1), None);
    }

    #[test]
    fn ticks_have_no_spurious_digits() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(2.50), "2.5");
        assert_eq!(tick(12.0), "12");
        assert_eq!(tick(250.4), "250");
        assert_eq!(tick(0.004), "0.004");
        assert_eq!(tick(0.00123), "0.0012");
        assert_eq!(tick(-0.05), "-0.05");
    }

    #[test]
    fn placeholder_shortens_long_titles_on_screen_but_not_for_screen_readers() {
        let long = "CTC trend for MRN-".to_string() + &"9".repeat(120);
        let svg = placeholder("trend", &long, "No data yet.", (900, 440));
        let document = roxmltree::Document::parse(&svg).expect("placeholder is well-formed");
        let title = document
            .descendants()
            .find(|n| n.has_tag_name("title"))
            .and_then(|n| n.text());
        assert_eq!(title, Some(long.as_str()));
        let drawn = document
            .descendants()
            .find(|n| n.has_tag_name("text"))
            .and_then(|n| n.text())
            .unwrap_or("");
        assert!(drawn.ends_with('…') && drawn.chars().count() <= 900 / 11);
        assert!(svg.contains("viewBox=\"0 0 900 200\""));
    }

    #[test]
    fn finish_adds_title_desc_and_escapes() {
        let raw = "<svg width=\"10\" height=\"10\" viewBox=\"0 0 10 10\" xmlns=\"http://www.w3.org/2000/svg\">\n<rect/>\n</svg>\n";
        let hot = Hotspot {
            x_px: 1,
            y_px: 2,
            class: "point".into(),
            title: "a < b".into(),
        };
        let svg = finish(raw, "demo", "T & D", "desc", &[hot]);
        assert!(svg.contains("<title>T &amp; D</title>"));
        assert!(svg.contains("aria-label=\"T &amp; D\""));
        assert!(
            !svg.contains(" id=\""),
            "no ids: a page may carry many charts"
        );
        assert!(svg.contains("<title>a &lt; b</title>"));
        assert!(!svg.contains("width=\"10\""));
        assert!(roxmltree::Document::parse(&svg).is_ok());
    }
}
