//! `ferrocount serve`: the appliance as a service — configuration, logs, the store, the
//! acquisition engine on its board, and the web face — until SIGTERM or SIGINT.
//!
//! Start-up: load the configuration (defaults < TOML file < `FERROCOUNT_*` < command-line
//! options), start logging, open the database (migrations applied), make the first
//! administrator when there are no users (password printed once on the console), start the
//! engine (which marks runs left in flight `interrupted`), bind the listener, and tell systemd
//! `READY=1` (and ping its watchdog when it asks for one).
//!
//! Shut-down on SIGTERM/SIGINT: tell systemd `STOPPING=1`, stop accepting requests and let those
//! in flight finish, stop the engine (the run being measured is recorded `interrupted`, the board
//! halted), record the shutdown in the audit trail and the instrument log, close the pool.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use appliance::assembly::ApplianceBuilder;
use appliance::config::{ApplianceConfig, BoardChoice, LogFormat};
use appliance::first_admin::ensure_first_admin;
use appliance::store::instrument_log::{LogKind, NewLogEntry};
use appliance::store::{Actor, AuditEntry};
use sd_notify::NotifyState;
use tracing_subscriber::EnvFilter;

/// `ferrocount serve` options (each overrides the configuration file and environment).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (see docs/ferrocount.example.toml); must exist when given.
    #[arg(long, value_name = "FILE", env = "FERROCOUNT_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (default ./ferrocount-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The board: simulated or spi (default: the configuration's `board`, else simulated).
    #[arg(long, value_name = "BOARD")]
    board: Option<BoardChoice>,
}

impl ServeArgs {
    /// The service on `data_dir`, listening on `listen`, with no configuration file.
    pub fn on(data_dir: PathBuf, listen: SocketAddr) -> Self {
        Self {
            config: None,
            data_dir: Some(data_dir),
            listen: Some(listen),
            board: None,
        }
    }
}

/// Runs the service until a signal stops it.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = ApplianceConfig::load(args.config.as_deref())?;
    if let Some(data_dir) = args.data_dir {
        config.data_dir = data_dir;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(board) = args.board {
        config.board = board;
    }
    init_logging(&config)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(config: &ApplianceConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.filter))
        .with_context(|| format!("log filter {:?}", config.log.filter))?;
    // Colours only on a terminal: a log file or the journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let installed = match config.log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}

async fn serve(config: ApplianceConfig) -> anyhow::Result<()> {
    // A configured certificate is checked before anything else starts, so a bad file stops
    // start-up at once, naming the file.
    if let Some(tls) = &config.http.tls {
        web_ui::server_tls_config(tls).context("[http.tls]")?;
    }
    let appliance = ApplianceBuilder::new(config.clone())
        .build()
        .await
        .context("assembling the appliance")?;
    let (store, engine) = (appliance.store.clone(), appliance.engine.clone());
    tracing::info!(data_dir = %config.data_dir.display(), board = %config.board, "appliance assembled");
    if let Some(admin) = ensure_first_admin(&store).await? {
        // Printed once, on the console, never logged.
        println!(
            "\nFirst start: created the administrator account.\n  user name: {}\n  password:  {}\n\
             Write the password down now; it is not shown again. Sign in and make personal \
             accounts (`ferrocount user add`).\n",
            admin.username, admin.password
        );
        tracing::warn!(
            username = admin.username,
            "first start: administrator created; its password was printed on the console"
        );
    }
    // The outbox senders, one per destination (issue 14).
    let ops_for_sender = || {
        operations::Operations::with_engine(
            store.clone(),
            engine.clone(),
            operations::LoginThrottle::configured(&config.http),
        )
    };
    // Plain text to another machine is allowed (many LIS take MLLP only so, on a closed network
    // or a site's tunnel) but said at every start (`appliance::interop::destination`).
    for (position, destination) in config.destinations.iter().enumerate() {
        if destination.plain_text_off_machine() {
            tracing::warn!(
                destination = destination.name(position),
                "[[destinations]]: HL7 v2 in plain text to another machine; results travel \
                 unencrypted unless the network is closed or tunnelled (set tls = true and \
                 ca_file to encrypt)"
            );
        }
    }
    let mut senders: Vec<_> = operations::hl7v2::Hl7Destination::configured(&config.destinations)
        .map_err(anyhow::Error::msg)
        .context("[[destinations]]")?
        .into_iter()
        .map(|destination| {
            let ops = ops_for_sender();
            tracing::info!(
                destination = destination.name,
                address = destination.address,
                "outbox sender started"
            );
            tokio::spawn(async move {
                ops.run_sender(
                    operations::hl7v2::Hl7Courier { destination },
                    operations::outbox::RetryPolicy::default(),
                )
                .await;
            })
        })
        .collect();
    for destination in operations::fhir::FhirDestination::configured(&config.destinations) {
        let name = destination.name.clone();
        let base_url = destination.base_url.clone();
        let courier = operations::fhir::FhirCourier::new(destination)
            .with_context(|| format!("[[destinations]] {name}"))?;
        let ops = ops_for_sender();
        tracing::info!(destination = name, base_url, "outbox sender started");
        senders.push(tokio::spawn(async move {
            ops.run_sender(courier, operations::outbox::RetryPolicy::default())
                .await;
        }));
    }
    // The hub sender (issue 15), when this appliance is enrolled (`ferrocount enrol`).
    match operations::hub_link::HubLink::load(&config.data_dir) {
        Ok(Some(link)) => {
            let client = operations::hub_link::HubLink::client(link.ca_file.as_deref())
                .context("the hub link (hub-credential.json)")?;
            let ops = ops_for_sender();
            tracing::info!(
                hub = link.hub_url,
                serial = link.serial,
                "hub sender started"
            );
            senders.push(tokio::spawn(async move {
                ops.run_hub_sender(
                    link,
                    client,
                    operations::hub_sync::HubSyncPolicy::default(),
                    std::future::pending(),
                )
                .await;
            }));
        }
        Ok(None) => {}
        Err(words) => anyhow::bail!("the hub link (hub-credential.json): {words}"),
    }
    let application = web_ui::Application::build(&config, store.clone(), engine.clone()).await?;
    let address = application.local_addr();
    let scheme = if application.is_tls() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%address, scheme, simulated = engine.is_simulated(), "listening");
    store
        .record_event(
            &Actor::Appliance,
            AuditEntry::new("appliance.start", "appliance").detail(
                serde_json::json!({ "listen": address.to_string(),
                                            "scheme": scheme,
                                            "version": env!("CARGO_PKG_VERSION") }),
            ),
        )
        .await?;
    notify(&[NotifyState::Ready]);
    let watchdog = sd_notify::watchdog_enabled().map(|period| {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period / 2);
            loop {
                ticks.tick().await;
                notify(&[NotifyState::Watchdog]);
            }
        })
    });
    // Open event streams end with their runs; on a signal, requests in flight get a bounded
    // time to finish before the server is dropped.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = application.run_until(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let drain_limit = async move {
        let mut stop_rx = stop_rx;
        let _ = stop_rx.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    };
    tokio::select! {
        served = server => served?,
        () = drain_limit => tracing::warn!("requests still open 10 s after the signal; closing them"),
    }
    notify(&[NotifyState::Stopping]);
    tracing::info!("stopped accepting requests; stopping the engine");
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    // A message being sent stays pending and is sent again, with its control id, after restart.
    for sender in senders {
        sender.abort();
    }
    // The engine halts the board and records the run in flight; give it a bounded time.
    if tokio::time::timeout(Duration::from_secs(60), engine.shutdown())
        .await
        .is_err()
    {
        tracing::error!("the engine did not stop within 60 s; closing anyway");
    }
    store
        .log_instrument(&NewLogEntry::message(
            LogKind::Event,
            "service stopped by signal (graceful shutdown)",
        ))
        .await?;
    store
        .record_event(
            &Actor::Appliance,
            AuditEntry::new("appliance.shutdown", "appliance").reason("SIGTERM or SIGINT"),
        )
        .await?;
    store.close().await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Tells systemd, when it supervises us (a no-op otherwise).
fn notify(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "systemd notification failed");
    }
}

/// Completes on SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::error!(%error, "cannot watch SIGTERM; only Ctrl-C will stop the service");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
