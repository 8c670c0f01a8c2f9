//! `ferrocount result correct`: corrects a run's result from the appliance's console, through the
//! operations layer's one correction (the API's `POST /api/v1/runs/{id}/corrections` and the run
//! page's form use the same): a new version recounted from the stored readings with the corrected
//! blood volume and/or indication, with a reason, signed by a user who may release (their
//! password read from standard input when it is not a terminal, else prompted for without echo).
//! The original version is kept; a released run goes back to awaiting release.
//!
//! Exit status: 0 corrected; 1 refused (the message names why: role, state, field, password).

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use appliance::assembly::engine_settings;
use appliance::config::ApplianceConfig;
use appliance::store::RunId;
use appliance::store::users::Username;
use operations::results::CorrectionOrder;
use operations::signature::SignatureInput;
use operations::{LoginThrottle, Operations};

use crate::data_dir::{DataDirArg, block_on};

/// `ferrocount result ...`
#[derive(Debug, clap::Args)]
pub struct ResultArgs {
    #[command(subcommand)]
    command: ResultCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ResultCommand {
    /// Correct a run's result: a new version with a reason, signed (the original is kept).
    Correct {
        /// The run whose result is corrected.
        #[arg(long)]
        run: i64,
        /// The corrected processed blood volume, mL.
        #[arg(long, value_name = "V")]
        blood_ml: Option<String>,
        /// The corrected indication.
        #[arg(long, value_name = "I")]
        indication: Option<String>,
        /// Why the result is corrected (kept with the version and in the audit trail).
        #[arg(long)]
        reason: String,
        /// The signer's user name (a clinician or lab administrator).
        #[arg(long, value_name = "NAME")]
        user: String,
        /// The signer's printed name (default: the account's).
        #[arg(long, value_name = "NAME")]
        printed_name: Option<String>,
        /// TOML configuration file (for the indication table); must exist when given.
        #[arg(long, value_name = "FILE", env = "FERROCOUNT_CONFIG")]
        config: Option<std::path::PathBuf>,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
}

/// Runs a `result` command.
pub fn run(args: ResultArgs) -> anyhow::Result<ExitCode> {
    let ResultCommand::Correct {
        run,
        blood_ml,
        indication,
        reason,
        user,
        printed_name,
        config,
        data_dir,
    } = args.command;
    // Parsed before anything is opened: a bad field is refused naming it.
    let order = CorrectionOrder::parse(blood_ml.as_deref(), indication.as_deref(), &reason)?;
    let config = ApplianceConfig::load(config.as_deref())?;
    let settings = engine_settings(&config)?;
    let password = crate::user::password_line("Password (to sign the correction): ")?;
    block_on(async move {
        let store = data_dir.open_existing().await?;
        let signer = store.user_by_name(&Username::parse(&user)?).await?;
        let ops = Operations::new(
            store.clone(),
            settings,
            LoginThrottle::configured(&config.http),
        );
        let signature = SignatureInput {
            password,
            printed_name: printed_name.unwrap_or_else(|| signer.display_name.clone()),
        };
        let outcome = ops
            .correct_result(
                &signer,
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                RunId(run),
                &order,
                &signature,
            )
            .await;
        store.close().await;
        match outcome {
            Ok(version) => {
                println!(
                    "run {run}: version {} stored ({:.1} per 7.5 mL, {}); it awaits release",
                    version.version,
                    version.summary.per_7_5ml,
                    version.summary.category.as_str().replace('_', " ")
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(refusal) => {
                eprintln!("run {run}: not corrected: {refusal}");
                Ok(ExitCode::FAILURE)
            }
        }
    })
}
