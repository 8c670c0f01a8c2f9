//! `ferrocount export --csv`: every stored result, one row per result version (a corrected result
//! shows each version; `current` marks the one in force, `released_at` its release signature).
//! Written to standard output, or to `--output FILE`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use appliance::store::export::ExportRow;

use crate::data_dir::DataDirArg;

/// Options of `ferrocount export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write CSV (the only format so far).
    #[arg(long)]
    csv: bool,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    data_dir: DataDirArg,
}

/// The CSV header, in column order.
const HEADER: [&str; 19] = [
    "result_id",
    "run_id",
    "version",
    "current",
    "patient_mrn",
    "drawn_at",
    "blood_ml",
    "indication",
    "reagent_lot",
    "run_state",
    "simulated",
    "per_7_5ml",
    "per_7_5ml_ci95_low",
    "per_7_5ml_ci95_high",
    "category",
    "call",
    "reason",
    "created_at",
    "released_at",
];

/// Runs `ferrocount export`.
pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    if !args.csv {
        bail!("say the format: `ferrocount export --csv`");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let rows = runtime.block_on(async {
        let store = args.data_dir.open_existing().await?;
        let rows = store.export_rows().await?;
        store.close().await;
        anyhow::Ok(rows)
    })?;
    let text = to_csv(&rows);
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("writing the export to {}", path.display()))?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn to_csv(rows: &[ExportRow]) -> String {
    let mut text = HEADER.join(",");
    text.push('\n');
    let opt = |value: &Option<String>| value.clone().unwrap_or_default();
    for row in rows {
        let fields = [
            row.result_id.to_string(),
            row.run_id.to_string(),
            row.version.to_string(),
            row.current.to_string(),
            row.patient_mrn.clone(),
            row.drawn_at.clone(),
            row.blood_ml.to_string(),
            opt(&row.indication),
            opt(&row.reagent_lot),
            row.run_state.clone(),
            row.simulated.to_string(),
            row.per_7_5ml.to_string(),
            row.per_7_5ml_ci95_low.to_string(),
            row.per_7_5ml_ci95_high.to_string(),
            row.category.clone(),
            opt(&row.call),
            opt(&row.reason),
            row.created_at.clone(),
            opt(&row.released_at),
        ];
        let line: Vec<String> = fields.iter().map(|f| quoted(f)).collect();
        text.push_str(&line.join(","));
        text.push('\n');
    }
    text
}

/// RFC 4180 quoting: fields with a comma, quote or line break are quoted, quotes doubled.
fn quoted(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_separators_are_quoted() {
        assert_eq!(quoted("plain"), "plain");
        assert_eq!(quoted("a,b"), "\"a,b\"");
        assert_eq!(quoted("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(quoted("two\nlines"), "\"two\nlines\"");
    }
}
