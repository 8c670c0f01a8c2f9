//! The clinical report as a PDF made on the server (issue 11, point 7): one page with the lab
//! and instrument header from configuration, both patient identifiers, the accession, the draw
//! time in local time with its zone, the result with its interval, category, call with its
//! cut-off, the QC and calibration it relied on, the status (PRELIMINARY, FINAL, CORRECTED), the
//! signature and "Page 1 of 1"; the replicate curves, each with its stored fit, on a second
//! page only when asked.
//!
//! Three steps: [`content`] words the report from a viewed run (every decision made by the
//! operations layer), [`layout`] places the words on pages (plain data, testable), and
//! [`render`] draws the pages with `krilla`, embedding the subset of DejaVu Sans the report uses
//! (`web-ui/fonts`), so its text extracts and prints the same everywhere.
//!
//! Not here: who may see a report (the operations layer), the HTTP side (`api::run_report`).

mod content;
mod layout;
mod render;

pub use content::{Field, ReportText};
pub use layout::{Curve, Item, Page, pages};
pub use render::PdfError;

use appliance::site::PaperSize;

use crate::charts::FittedDecay;
use operations::runs::RunRecord;

/// The PDF of `report` on `paper`, with a second page of `curves` when given.
pub fn pdf(
    report: &ReportText,
    paper: PaperSize,
    curves: Option<&[Curve]>,
) -> Result<Vec<u8>, PdfError> {
    let pages = layout::pages(report, paper, curves);
    render::render(&pages, layout::page_size(paper), &report_title(report))
}

fn report_title(report: &ReportText) -> String {
    format!("CTC count — {}", report.status.as_str())
}

/// The replicate decays of a viewed run (its measurements read), in the order measured.
pub fn curves_of(record: &RunRecord) -> Vec<Curve> {
    record
        .measurements
        .iter()
        .map(|m| {
            let tube = record
                .sample
                .tubes
                .iter()
                .find(|t| t.id == m.tube_id)
                .map_or("unknown", |t| t.kind.as_str());
            let fit = m
                .fit_report
                .as_ref()
                .and_then(|report| report.fit.mono())
                .map(|mono| FittedDecay {
                    amplitude: mono.amplitude,
                    t2_ms: mono.t2_ms,
                    offset: mono.offset,
                    echoes_skipped: m.train.len().saturating_sub(mono.echoes_used),
                });
            let fitted = match (&fit, &m.fit_report) {
                (Some(fit), _) => format!("T2 {:.1} ms", fit.t2_ms),
                (None, Some(_)) => "not fitted: the fit failed".to_owned(),
                (None, None) => "not fitted".to_owned(),
            };
            Curve {
                label: format!("{tube} tube, replicate {} — {fitted}", m.replicate),
                times_ms: m.train.times_s().iter().map(|t| t * 1000.0).collect(),
                amplitudes: m.train.phase().real,
                fit,
            }
        })
        .collect()
}
