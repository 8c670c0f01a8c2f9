//! `ferrocount audit verify`: walks the audit trail's hash chain and names the first broken row.
//!
//! Exit status 0 when the chain is intact (it prints the row count and the head hash, worth
//! copying somewhere else: rows deleted from the end can only be noticed against it), 1 when a
//! row does not verify.

use std::process::ExitCode;

use appliance::store::AuditVerification;

use crate::data_dir::{DataDirArg, block_on};

/// `ferrocount audit ...`
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Check that no audit row was altered, inserted or removed.
    Verify {
        #[command(flatten)]
        data_dir: DataDirArg,
    },
}

/// Runs an `audit` command.
pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AuditCommand::Verify { data_dir } => block_on(async move {
            let store = data_dir.open_existing().await?;
            let verification = store.verify_audit_chain().await?;
            store.close().await;
            match verification {
                AuditVerification::Intact { rows, head_hash } => {
                    println!(
                        "audit trail intact: {rows} rows, head hash {}",
                        head_hash.as_deref().unwrap_or("(empty trail)")
                    );
                    Ok(ExitCode::SUCCESS)
                }
                AuditVerification::Broken(chain_break) => {
                    println!("audit trail BROKEN at {chain_break}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }),
    }
}
