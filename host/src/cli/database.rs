//! How every database verb reaches the store: the configuration's
//! `database_url` (from `sluice.toml`, `SLUICE_DATABASE_URL` or
//! `--database-url`), migrated on open unless `require_migrated` says a pending
//! migration should stop the command instead.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::config::Config;
use crate::store::{self, Store, StoreError, StoreOptions};

/// `--config FILE`, shared by every verb that reads the configuration.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The configuration file (default: ./sluice.toml when it exists).
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(self.config.as_deref())?)
    }
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// `sqlite://PATH` (created if missing) or `postgres://USER@HOST/DB`;
    /// overrides `database_url` in the configuration.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Fail instead of applying pending migrations.
    #[arg(long)]
    pub require_migrated: bool,
}

impl DatabaseArgs {
    /// The configuration with this command line's overrides applied.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let mut config = self.config.load()?;
        if let Some(url) = &self.database_url {
            config.database_url = url.clone();
        }
        config.require_migrated |= self.require_migrated;
        config.validate()?;
        Ok(config)
    }

    /// Opens the store, then applies (or refuses) pending migrations.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(open(&self.load_config()?).await?)
    }

    pub async fn open_unmigrated(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(open_unmigrated(&self.load_config()?).await?)
    }
}

/// Opens the configured store and applies (or, with `require_migrated`,
/// refuses) pending migrations.
pub async fn open(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    let store = open_unmigrated(config).await?;
    if config.require_migrated {
        let pending = store.pending_migrations().await?;
        if pending > 0 {
            return Err(StoreError::PendingMigrations(pending));
        }
    } else {
        store.migrate().await?;
    }
    Ok(store)
}

pub async fn open_unmigrated(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    store::open(
        &config.database_url,
        StoreOptions {
            max_payload_bytes: config.max_payload_bytes,
            max_connections: config.max_connections,
        },
    )
    .await
}
