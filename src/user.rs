//! `ferrocount user add|passwd|disable`: managing the appliance's users from its console.
//!
//! Passwords are read from standard input when it is not a terminal (one line, for scripts and
//! provisioning), and prompted for twice, without echo, when it is. Each command is an operation
//! of `operations::users` asked by the console (`Requester::Console`): the same rules as the
//! admin page, audited as made by the appliance (whoever holds its console).

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::Context;
use appliance::config::{HttpConfig, default_indications};
use appliance::engine::EngineConfig;
use appliance::store::Store;
use appliance::store::users::NewPassword;
use operations::users::{ChangeReason, UserOrder};
use operations::{LoginThrottle, Operations, Requester};

use crate::data_dir::{DataDirArg, block_on};

/// `ferrocount user ...`
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Add a user (the password is read from standard input, or prompted for).
    Add {
        /// Sign-in name.
        name: String,
        /// What the user may do.
        #[arg(long, value_parser = ["operator", "clinician", "lab-admin"])]
        role: String,
        /// Printed name used in electronic signatures (default: the sign-in name).
        #[arg(long, default_value = "")]
        display_name: String,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
    /// Set a user's password (read from standard input, or prompted for); closes their sessions.
    Passwd {
        /// Sign-in name.
        name: String,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
    /// Disable a user: no sign-in, sessions and API tokens revoked. Users are never deleted.
    Disable {
        /// Sign-in name.
        name: String,
        /// Why (kept in the audit trail; 1 to 500 characters).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
}

/// Runs a `user` command.
pub fn run(args: UserArgs) -> anyhow::Result<ExitCode> {
    let console = Requester::Console;
    block_on(async move {
        match args.command {
            UserCommand::Add {
                name,
                role,
                display_name,
                data_dir,
            } => {
                let password = read_new_password()?;
                let order = UserOrder::parse(&name, &display_name, &role, &password)?;
                let ops = operations(data_dir.open_or_create().await?)?;
                let user = ops.add_user(&console, order).await?;
                println!("added user {} ({})", user.username, user.role);
                ops.store.close().await;
            }
            UserCommand::Passwd { name, data_dir } => {
                let ops = operations(data_dir.open_existing().await?)?;
                ops.named_user(&console, &name).await?;
                let password = NewPassword::parse(&read_new_password()?)?;
                ops.set_password(&console, &name, password).await?;
                println!("password of {name} changed; their sessions are closed");
                ops.store.close().await;
            }
            UserCommand::Disable {
                name,
                reason,
                data_dir,
            } => {
                let reason = ChangeReason::parse(&reason)?;
                let ops = operations(data_dir.open_existing().await?)?;
                ops.disable_user(&console, &name, &reason).await?;
                println!("disabled {name}; their sessions and API tokens are revoked");
                ops.store.close().await;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The operations over the data directory's store (no engine: nothing is measured, so the
/// measurement settings are the built-in ones).
fn operations(store: Store) -> anyhow::Result<Operations> {
    Ok(Operations::new(
        store,
        EngineConfig::new(default_indications()?),
        LoginThrottle::configured(&HttpConfig::default()),
    ))
}

/// A new password: one line of standard input when it is not a terminal, else prompted twice.
pub(crate) fn read_new_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = password_line("New password: ")?;
        let second = password_line("Again: ")?;
        anyhow::ensure!(first == second, "the two passwords differ");
        Ok(first)
    } else {
        password_line("")
    }
}

/// A password: prompted with `prompt` (not echoed) on a terminal, else the first line of
/// standard input (at most 4 KiB read), for scripts and tests.
pub(crate) fn password_line(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return rpassword::prompt_password(prompt).context("reading the password");
    }
    let mut text = String::new();
    stdin
        .lock()
        .take(4096)
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}
