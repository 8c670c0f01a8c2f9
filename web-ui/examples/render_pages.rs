//! Renders every page with the sample view models into `target/pages/*.html`, with the
//! stylesheet inlined and the scripts copied beside them, so each file opens straight from disk
//! (e.g. for headless screenshots).
//!
//! ```sh
//! cargo run -p web-ui --example render_pages            # writes target/pages/
//! cargo run -p web-ui --example render_pages -- /tmp/p  # or into a directory of your choice
//! ```

use std::path::PathBuf;

use askama::Template;
use web_ui::assets;
use web_ui::views::{paths, samples};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("pages")
        });
    std::fs::create_dir_all(out_dir.join("static"))?;
    for name in assets::names() {
        if let Some((body, _)) = assets::get(name) {
            std::fs::write(out_dir.join("static").join(name), body)?;
        }
    }
    let pages: Vec<(&str, String)> = vec![
        ("sign_in", samples::sign_in().render()?),
        ("dashboard", samples::dashboard().render()?),
        ("dashboard_empty", samples::dashboard_empty().render()?),
        ("new_run", samples::new_run().render()?),
        ("live_run", samples::live_run().render()?),
        ("patient", samples::patient().render()?),
        ("patient_empty", samples::patient_empty().render()?),
        ("run", samples::run().render()?),
        ("run_releasable", samples::run_releasable().render()?),
        ("run_empty", samples::run_empty().render()?),
        ("qc", samples::qc().render()?),
        ("calibration", samples::calibration().render()?),
        ("admin", samples::admin().render()?),
    ];
    let link = format!("<link rel=\"stylesheet\" href=\"{}\">", paths::STYLESHEET);
    let inline = format!("<style>\n{}</style>", assets::STYLESHEET);
    let mut index = String::from(
        "<!DOCTYPE html><meta charset=\"utf-8\"><title>Ferrocount pages</title><h1>Ferrocount pages</h1><ul>\n",
    );
    for (name, html) in &pages {
        // Scripts load from a copy of the assets beside the pages (relative, so file:// works).
        let standalone = html
            .replace(&link, &inline)
            .replace("src=\"/static/", "src=\"static/");
        let path = out_dir.join(format!("{name}.html"));
        std::fs::write(&path, &standalone)?;
        index.push_str(&format!(
            "<li><a href=\"{name}.html\">{name}</a> ({} bytes served)</li>\n",
            html.len()
        ));
        println!("{:>8} bytes  {}", html.len(), path.display());
    }
    index.push_str("</ul>\n");
    std::fs::write(out_dir.join("index.html"), index)?;
    Ok(())
}
