//! How every database verb reaches the store: the configuration's
//! `database_url` (from `sluice.toml`, `SLUICE_DATABASE_URL` or
//! `--database-url`), migrated on open unless `require_migrated` says a pending
//! migration should stop the command instead.
//!
//! Only `migrate`, `run` and `enqueue` create a database. The verbs that read
//! or tidy the queue ([`DatabaseArgs::open_existing`]) refuse one that does not
//! exist (a SQLite file that is not there, a Postgres database or schema
//! without Sluice's tables): a typo in the URL should be an error, not an
//! empty queue.
//!
//! `--config`, `--database-url` and `--require-migrated` are global to the
//! verb, so they may follow its subcommand too (`sluice dead list
//! --database-url ...`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::bail;
use clap::Args;

use crate::config::{Config, redact_url, sqlite_file};
use crate::store::{self, Store, StoreError, StoreOptions};

/// `--config FILE`, shared by every verb that reads the configuration.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The configuration file (default: ./sluice.toml when it exists).
    #[arg(long, env = "SLUICE_CONFIG", global = true)]
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
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Fail instead of applying pending migrations.
    #[arg(long, global = true)]
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

    /// As [`DatabaseArgs::open`], for a database `migrate`, `run` or
    /// `enqueue` created before: a missing one is an error, never created.
    pub async fn open_existing(&self) -> anyhow::Result<Arc<dyn Store>> {
        let config = self.load_config()?;
        let shown = redact_url(&config.database_url);
        if let Some(file) = sqlite_file(&config.database_url)
            && !file.exists()
        {
            bail!(
                "there is no database at {shown} ({} does not exist); check --database-url or `database_url`, or create it with `sluice migrate`",
                file.display()
            );
        }
        let store = open_unmigrated(&config).await?;
        if !store.has_schema().await? {
            bail!(
                "the database at {shown} has no Sluice tables; check --database-url or `database_url` (on Postgres, also the schema in its search_path), or create them with `sluice migrate`"
            );
        }
        Ok(migrated(store, &config).await?)
    }

    pub async fn open_unmigrated(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(open_unmigrated(&self.load_config()?).await?)
    }
}

/// Opens the configured store and applies (or, with `require_migrated`,
/// refuses) pending migrations.
pub async fn open(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    migrated(open_unmigrated(config).await?, config).await
}

/// `store` once its pending migrations are applied, or refused.
async fn migrated(store: Arc<dyn Store>, config: &Config) -> Result<Arc<dyn Store>, StoreError> {
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
