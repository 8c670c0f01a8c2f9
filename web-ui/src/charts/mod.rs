//! SVG charts for the pages, drawn by plotters' SVG backend.
//!
//! Each chart is a pure function from a plain input struct to a complete `<svg>` document (a
//! `String` the templates embed as-is). Charts carry `role="img"`, a `<title>` and a `<desc>`,
//! scale to their container through CSS (`svg.chart`), and name marks in tooltips. Labels are SVG
//! `<text>` in the browser's sans-serif: plotters is built without `ttf`, so no font files are
//! read and nothing depends on fonts installed on the appliance. Empty inputs draw a "no data
//! yet" panel; non-finite values are left out, never written as `NaN`.
//!
//! Not here: computing what is drawn (fits, categories, Westgard verdicts come with the input),
//! HTTP, or page layout.

mod calibration;
mod decay;
mod legend;
mod levey_jennings;
mod svg_document;
mod t2_distribution;
mod trend;

pub use calibration::{
    CALIBRATION_SIZE_PX, CalibrationChart, CalibrationLine, CalibrationPoint, calibration_chart,
};
pub use decay::{DECAY_SIZE_PX, DecayChart, FittedDecay, MAX_DRAWN_ECHOES, decay_chart};
pub use levey_jennings::{
    LEVEY_JENNINGS_SIZE_PX, LeveyJenningsChart, LjPoint, LjViolation, levey_jennings_chart,
};
pub use t2_distribution::{T2_DISTRIBUTION_SIZE_PX, T2DistributionChart, t2_distribution_chart};
pub use trend::{TREND_SIZE_PX, TrendChart, TrendChartPoint, TrendEvent, trend_chart};

#[cfg(test)]
mod tests;
