//! How every database verb reaches the store: one `--database-url` (or
//! `SLUICE_DATABASE_URL`), migrated on open unless `--require-migrated` says a
//! pending migration should stop the command instead.

use std::sync::Arc;

use clap::Args;

use crate::store::{self, Store, StoreError, StoreOptions};

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` (created if missing) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "SLUICE_DATABASE_URL",
        default_value = "sqlite://sluice.db"
    )]
    pub database_url: String,
    /// Fail instead of applying pending migrations.
    #[arg(long, env = "SLUICE_REQUIRE_MIGRATED")]
    pub require_migrated: bool,
}

impl DatabaseArgs {
    /// Opens the store, then applies (or, with `--require-migrated`, refuses)
    /// pending migrations.
    pub async fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        let store = self.open_unmigrated().await?;
        if self.require_migrated {
            let pending = store.pending_migrations().await?;
            if pending > 0 {
                return Err(StoreError::PendingMigrations(pending));
            }
        } else {
            store.migrate().await?;
        }
        Ok(store)
    }

    pub async fn open_unmigrated(&self) -> Result<Arc<dyn Store>, StoreError> {
        store::open(&self.database_url, StoreOptions::default()).await
    }
}
