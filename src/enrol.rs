//! `ferrocount enrol --hub URL --code CODE --serial SERIAL [--ca-file PEM] [--data-dir DIR]`:
//! enrols this appliance with its hub (`operations::hub_link`), keeping the credential in the
//! data directory (mode 0600), audited as the console.

use std::path::PathBuf;
use std::process::ExitCode;

use appliance::config::HttpConfig;
use operations::hub_link::HubLink;
use operations::{LoginThrottle, Operations, Requester};

use crate::data_dir::{DataDirArg, block_on};

/// `ferrocount enrol` options.
#[derive(Debug, clap::Args)]
pub struct EnrolArgs {
    /// The hub's base URL (https://…).
    #[arg(long, value_name = "URL")]
    hub: String,
    /// The one-time enrolment code a lab admin issued on the hub.
    #[arg(long)]
    code: String,
    /// This appliance's serial number (as in the configuration's [site] instrument_serial).
    #[arg(long)]
    serial: String,
    /// The hub's CA certificate (PEM), when it is not among the system's roots.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    #[command(flatten)]
    data_dir: DataDirArg,
}

/// Runs `ferrocount enrol`.
pub fn run(args: EnrolArgs) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let store = args.data_dir.open_or_create().await?;
        let ops = Operations::new(
            store,
            appliance::engine::EngineConfig::new(appliance::config::default_indications()?),
            LoginThrottle::configured(&HttpConfig::default()),
        );
        let outcome = ops
            .enrol_with_hub(
                &Requester::Console,
                &args.data_dir.data_dir,
                &args.hub,
                &args.code,
                &args.serial,
                args.ca_file.as_deref(),
            )
            .await;
        ops.store.close().await;
        let link = outcome?;
        println!(
            "enrolled with {} as {:?} (hub id {}); the credential is in {}",
            link.hub_url,
            link.name,
            link.appliance_id,
            HubLink::file(&args.data_dir.data_dir).display()
        );
        Ok(ExitCode::SUCCESS)
    })
}
