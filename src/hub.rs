//! `ferrocount hub`: the hub for many appliances, on PostgreSQL (the `hub` crate), and its two
//! console commands.
//!
//! - `ferrocount hub --database-url postgres://… [--listen ADDR] [--config FILE]` migrates the
//!   hub's schema and serves `POST /hub/v1/enrol` and `POST /hub/v1/ingest` (HTTPS when the
//!   configuration has `[tls]`, through the web face's server, as `ferrocount serve`) until
//!   SIGTERM or SIGINT.
//! - `ferrocount hub enrolment-code --name NAME [--valid-hours H]` issues a one-time code (shown
//!   once) for an appliance to enrol with.
//! - `ferrocount hub revoke --serial SERIAL --reason TEXT` revokes an appliance's credential.
//! - `ferrocount hub audit verify` walks the hub's audit chain (exit status 0 intact, 1 broken),
//!   as `ferrocount audit verify` does on an appliance.
//! - `ferrocount hub user add NAME --role ROLE [--display-name TEXT]` (the password from standard
//!   input, or prompted for twice), `hub user disable NAME --reason TEXT`, `hub user list`: the
//!   hub's own people (lab admins, lab managers, clinicians), as `ferrocount user` on an
//!   appliance.
//!
//! The lab admin's two actions are console commands, not an HTTP admin API, for now: the hub has
//! no users or sign-in yet (they come with its pages), and whoever may run a command with the
//! hub's database URL holds the hub anyway, as the appliance's `ferrocount user` does for its
//! console. Both are audited on the hub as `console`.
//!
//! The configuration file (TOML, every key optional; the command line wins):
//! `database_url = "postgres://…"`, `listen = "127.0.0.1:8443"`, and
//! `[tls] cert_file = "…", key_file = "…"`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ::hub::HubStore;
use ::hub::store::audit::{AuditEntry, HubActor, HubAuditVerification};
use ::hub::store::people::{HubRole, NewHubUser};
use anyhow::Context;
use appliance::config::TlsConfig;
use serde::Deserialize;

/// `ferrocount hub` options.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HubArgs {
    #[command(subcommand)]
    command: Option<HubCommand>,
    /// The hub's PostgreSQL database, `postgres://user:password@host:port/database`. On another
    /// machine only over verified TLS: add `?sslmode=verify-full&sslrootcert=CA.pem`.
    #[arg(long, value_name = "URL", global = true)]
    database_url: Option<String>,
    /// TOML configuration file (database_url, listen, [tls]); must exist when given.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8443).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

#[derive(Debug, clap::Subcommand)]
enum HubCommand {
    /// Issue a one-time enrolment code for an appliance (printed once).
    EnrolmentCode {
        /// The appliance's name on the hub (e.g. "Ward 3 CTC counter").
        #[arg(long)]
        name: String,
        /// Hours the code stays valid (1 to 720).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u16).range(1..=720))]
        valid_hours: u16,
    },
    /// Revoke an enrolled appliance: its credential is refused from now on; its records stay.
    Revoke {
        /// The appliance's serial number.
        #[arg(long)]
        serial: String,
        /// Why (recorded in the hub's audit trail and told to the appliance).
        #[arg(long)]
        reason: String,
    },
    /// The hub's audit trail.
    Audit {
        #[command(subcommand)]
        command: HubAuditCommand,
    },
    /// The hub's own people (not the appliances' users).
    User {
        #[command(subcommand)]
        command: HubUserCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
enum HubUserCommand {
    /// Add one of the hub's people (the password is read from standard input, or prompted for).
    Add {
        /// Sign-in name.
        name: String,
        /// What they do: lab-admin (users, enrolment, everything), lab-manager (the fleet, no
        /// patient data), clinician (patients' results).
        #[arg(long, value_parser = ["lab-admin", "lab-manager", "clinician"])]
        role: String,
        /// The name pages show (default: the sign-in name).
        #[arg(long, default_value = "")]
        display_name: String,
    },
    /// Disable a user: they cannot sign in, their sessions end; the audit trail keeps them.
    Disable {
        /// Sign-in name.
        name: String,
        /// Why (recorded in the hub's audit trail).
        #[arg(long)]
        reason: String,
    },
    /// List the hub's people and their roles.
    List,
}

#[derive(Debug, clap::Subcommand)]
enum HubAuditCommand {
    /// Check that no row of the hub's audit trail was altered, inserted or removed.
    Verify,
}

/// The hub's configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HubConfig {
    database_url: Option<String>,
    listen: Option<SocketAddr>,
    tls: Option<TlsConfig>,
}

impl HubConfig {
    fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let Some(file) = file else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the hub's configuration {}", file.display()))?;
        toml::from_str(&text).with_context(|| format!("the hub's configuration {}", file.display()))
    }
}

/// Runs `ferrocount hub …`.
pub fn run(args: HubArgs) -> anyhow::Result<ExitCode> {
    let config = HubConfig::load(args.config.as_deref())?;
    let database_url = args
        .database_url
        .or_else(|| config.database_url.clone())
        .context(
            "no database: give --database-url postgres://… or database_url in --config FILE",
        )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match args.command {
        None => {
            init_logging()?;
            let listen = args
                .listen
                .or(config.listen)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8443)));
            runtime.block_on(serve(&database_url, listen, config.tls.as_ref()))?;
        }
        Some(HubCommand::EnrolmentCode { name, valid_hours }) => {
            let issued = runtime.block_on(async {
                let store = HubStore::connect(&database_url).await?;
                let issued = store
                    .issue_enrolment_code(
                        &HubActor::Console,
                        &name,
                        time::Duration::hours(i64::from(valid_hours)),
                    )
                    .await;
                store.close().await;
                issued
            })?;
            let expires = issued
                .expires_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            println!(
                "Enrolment code for {:?}: {}\nValid once, until {expires}. It is not shown again; \
                 on the appliance: ferrocount enrol --hub URL --code CODE",
                issued.name, issued.code
            );
        }
        Some(HubCommand::Revoke { serial, reason }) => {
            let revoked = runtime.block_on(async {
                let store = HubStore::connect(&database_url).await?;
                let revoked = store.revoke(&HubActor::Console, &serial, &reason).await;
                store.close().await;
                revoked
            })?;
            println!(
                "Revoked appliance {:?} ({}): its credential is refused from now on.",
                revoked.serial, revoked.name
            );
        }
        Some(HubCommand::Audit {
            command: HubAuditCommand::Verify,
        }) => {
            let verification = runtime.block_on(async {
                let store = HubStore::connect(&database_url).await?;
                let verification = store.verify_audit_chain().await;
                store.close().await;
                verification
            })?;
            return Ok(match verification {
                HubAuditVerification::Intact { rows, head_hash } => {
                    println!(
                        "hub audit trail intact: {rows} rows, head hash {}",
                        head_hash.as_deref().unwrap_or("(empty trail)")
                    );
                    ExitCode::SUCCESS
                }
                HubAuditVerification::Broken { row, problem } => {
                    println!("hub audit trail BROKEN at row {row}: {problem}");
                    ExitCode::FAILURE
                }
            });
        }
        Some(HubCommand::User { command }) => {
            runtime.block_on(user_command(&database_url, command))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn user_command(database_url: &str, command: HubUserCommand) -> anyhow::Result<()> {
    // The password is asked for before the database is opened (a prompt waits for a person).
    let password = match &command {
        HubUserCommand::Add { .. } => Some(
            credentials::NewPassword::parse(&crate::user::read_new_password()?)
                .context("password")?,
        ),
        _ => None,
    };
    let store = HubStore::connect(database_url).await?;
    let done = match (command, password) {
        (
            HubUserCommand::Add {
                name,
                role,
                display_name,
            },
            Some(password),
        ) => {
            let new = NewHubUser {
                username: name,
                display_name,
                role: HubRole::parse(&role)?,
                password,
            };
            store
                .add_user(&HubActor::Console, &new)
                .await
                .map(|user| println!("added {} ({}) to the hub", user.username, user.role.label()))
        }
        (HubUserCommand::Disable { name, reason }, _) => store
            .disable_user(&HubActor::Console, &name, &reason)
            .await
            .map(|user| println!("disabled {}; their sessions are ended", user.username)),
        (HubUserCommand::List, _) => store.users().await.map(|users| {
            for user in users {
                println!(
                    "{}\t{}\t{}{}",
                    user.username,
                    user.role.label(),
                    crate::printable::printable(&user.display_name, false),
                    if user.disabled { "\t(disabled)" } else { "" }
                );
            }
        }),
        (HubUserCommand::Add { .. }, None) => Ok(()),
    };
    store.close().await;
    Ok(done?)
}

fn init_logging() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new("info"))
        .context("log filter")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}

async fn serve(
    database_url: &str,
    listen: SocketAddr,
    tls: Option<&TlsConfig>,
) -> anyhow::Result<()> {
    // A bad certificate stops start-up before anything else, naming the file.
    let tls = tls
        .map(web_ui::server_tls_config)
        .transpose()
        .context("[tls]")?
        .map(Arc::new);
    let store = HubStore::connect(database_url)
        .await
        .context("opening the hub's database")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    store
        .record_event(
            &HubActor::Hub,
            &AuditEntry::new("hub.start", "hub").detail(serde_json::json!({
                "listen": address.to_string(), "scheme": scheme,
                "version": env!("CARGO_PKG_VERSION") })),
        )
        .await?;
    tracing::info!(%address, scheme, "hub listening");
    // The address actually bound, for whoever started the hub (port 0 picks one).
    println!("hub listening on {scheme}://{address}");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = web_ui::serve_router(
        listener,
        ::hub::http::router(store.clone()),
        tls,
        async move {
            crate::serve::shutdown_signal().await;
            let _ = stop_tx.send(true);
        },
    );
    let drain_limit = async move {
        let mut stop_rx = stop_rx;
        let _ = stop_rx.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    };
    tokio::select! {
        served = server => served?,
        () = drain_limit => tracing::warn!("requests still open 10 s after the signal; closing them"),
    }
    store
        .record_event(
            &HubActor::Hub,
            &AuditEntry::new("hub.stop", "hub").reason("SIGTERM or SIGINT"),
        )
        .await?;
    store.close().await;
    tracing::info!("hub stopped");
    Ok(())
}
