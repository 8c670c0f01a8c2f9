//! The `--data-dir` option every command takes, and opening the store inside it.

use std::path::PathBuf;

use anyhow::Context;
use appliance::store::Store;
use appliance::store::db::DATABASE_FILE;

/// Where the appliance keeps its database.
#[derive(Clone, Debug, clap::Args)]
pub struct DataDirArg {
    /// Data directory; the database is `ferrocount.db` inside it.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "./ferrocount-data",
        env = "FERROCOUNT_DATA_DIR"
    )]
    pub data_dir: PathBuf,
}

impl DataDirArg {
    /// The database file.
    pub fn database_file(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }

    /// Opens the store, creating the directory and database when missing.
    pub async fn open_or_create(&self) -> anyhow::Result<Store> {
        Store::open(&self.data_dir)
            .await
            .with_context(|| format!("opening the data directory {}", self.data_dir.display()))
    }

    /// Opens the store of an existing database; refuses to create an empty one.
    pub async fn open_existing(&self) -> anyhow::Result<Store> {
        let file = self.database_file();
        anyhow::ensure!(
            file.is_file(),
            "no database at {} (is --data-dir right?)",
            file.display()
        );
        Store::open_file(&file)
            .await
            .with_context(|| format!("opening {}", file.display()))
    }
}

/// Runs one async command to completion on a small runtime.
pub fn block_on<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(work)
}
