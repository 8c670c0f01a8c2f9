//! The static files the pages load (stylesheet and scripts), embedded in the binary: the
//! appliance has no internet and no CDN, and the files must match the templates they were built
//! with.
//!
//! The HTTP side serves [`get`] under `/static/`. Not here: caching headers or compression.

/// The stylesheet (screen, tablet and print).
pub const STYLESHEET: &str = include_str!("../static/ferrocount.css");
/// The live-run script (server-sent events).
pub const LIVE_RUN_SCRIPT: &str = include_str!("../static/live-run.js");
/// The script every signed-in page loads: inactivity notice and print buttons.
pub const PAGE_SCRIPT: &str = include_str!("../static/page.js");

/// Every embedded file: path under `/static/`, bytes, MIME type.
const FILES: [(&str, &str, &str); 3] = [
    ("ferrocount.css", STYLESHEET, "text/css; charset=utf-8"),
    (
        "live-run.js",
        LIVE_RUN_SCRIPT,
        "text/javascript; charset=utf-8",
    ),
    ("page.js", PAGE_SCRIPT, "text/javascript; charset=utf-8"),
];

/// The file at `path` (relative to `/static/`, with or without a leading slash or `static/`) and
/// its MIME type, or `None` for anything not embedded.
pub fn get(path: &str) -> Option<(&'static [u8], &'static str)> {
    let name = path.trim_start_matches('/');
    let name = name.strip_prefix("static/").unwrap_or(name);
    FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .map(|(_, body, mime)| (body.as_bytes(), *mime))
}

/// Names of every embedded file.
pub fn names() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(name, _, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::paths;

    #[test]
    fn every_linked_asset_is_embedded_with_its_type() {
        for href in [
            paths::STYLESHEET,
            paths::LIVE_RUN_SCRIPT,
            paths::PAGE_SCRIPT,
        ] {
            let (body, mime) = get(href).unwrap_or_else(|| panic!("{href} not embedded"));
            assert!(!body.is_empty());
            assert!(mime.starts_with(if href.ends_with(".css") {
                "text/css"
            } else {
                "text/javascript"
            }));
        }
        assert_eq!(
            get("ferrocount.css").map(|f| f.1),
            Some("text/css; charset=utf-8")
        );
        assert!(get("/static/../Cargo.toml").is_none());
        assert!(get("").is_none());
        assert_eq!(names().count(), 3);
    }

    #[test]
    fn assets_reach_nothing_outside_the_appliance() {
        for name in names() {
            let (body, _) = get(name).expect("listed names are embedded");
            let text = std::str::from_utf8(body).expect("assets are UTF-8 text");
            for outside in ["http://", "https://", "@import", "fonts.googleapis"] {
                assert!(!text.contains(outside), "{name} refers to {outside}");
            }
            assert!(!text.contains("innerHTML"), "{name} writes HTML from data");
        }
    }
}
