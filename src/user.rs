//! `ferrocount user add|passwd|disable`: managing the appliance's users from its console.
//!
//! Passwords are read from standard input when it is not a terminal (one line, for scripts and
//! provisioning), and prompted for twice, without echo, when it is. Changes are audited as made
//! by the appliance (whoever holds its console).

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::Context;
use appliance::store::Actor;
use appliance::store::users::{NewPassword, NewUser, Role, Username};

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
        /// Why (kept in the audit trail).
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
}

/// Runs a `user` command.
pub fn run(args: UserArgs) -> anyhow::Result<ExitCode> {
    block_on(async move {
        match args.command {
            UserCommand::Add {
                name,
                role,
                display_name,
                data_dir,
            } => {
                let username = Username::parse(&name)?;
                let role: Role = role.parse()?;
                let password = read_new_password()?;
                let store = data_dir.open_or_create().await?;
                let user = store
                    .add_user(
                        &Actor::Appliance,
                        NewUser {
                            username,
                            display_name,
                            role,
                            password,
                        },
                    )
                    .await?;
                println!("added user {} ({})", user.username, user.role);
                store.close().await;
            }
            UserCommand::Passwd { name, data_dir } => {
                let username = Username::parse(&name)?;
                let store = data_dir.open_existing().await?;
                store.user_by_name(&username).await?;
                let password = read_new_password()?;
                store
                    .set_password(&Actor::Appliance, &username, password)
                    .await?;
                println!("password of {username} changed; their sessions are closed");
                store.close().await;
            }
            UserCommand::Disable {
                name,
                reason,
                data_dir,
            } => {
                let username = Username::parse(&name)?;
                let store = data_dir.open_existing().await?;
                store
                    .disable_user(&Actor::Appliance, &username, &reason)
                    .await?;
                println!("disabled {username}; their sessions and API tokens are revoked");
                store.close().await;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A new password: one line of standard input when it is not a terminal, else prompted twice.
fn read_new_password() -> anyhow::Result<NewPassword> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("New password: ").context("reading the password")?;
        let second = rpassword::prompt_password("Again: ").context("reading the password")?;
        anyhow::ensure!(first == second, "the two passwords differ");
        Ok(NewPassword::parse(&first)?)
    } else {
        let mut text = String::new();
        stdin
            .lock()
            .take(4096)
            .read_to_string(&mut text)
            .context("reading the password from standard input")?;
        let line = text.lines().next().unwrap_or("");
        Ok(NewPassword::parse(line)?)
    }
}
