//! Write transactions on SQLite's writer connection that always leave it
//! clean, whatever the disk or the caller does.
//!
//! sqlx's own transactions keep a depth count beside the connection. When
//! SQLite rolls a transaction back by itself (it does when the disk fills),
//! the COMMIT or ROLLBACK sqlx sends afterwards fails, the count never comes
//! back to zero, and every later `begin` on that connection fails with
//! "attempted to call begin_with at non-zero transaction depth": the writer
//! never recovers, while single-statement writes (claims) still go through.
//! Here a transaction is plain `BEGIN IMMEDIATE` / `COMMIT` / `ROLLBACK`
//! statements on a pooled connection, and one that did not end cleanly (its
//! ROLLBACK failed, or its caller gave up half-way) closes the connection
//! instead of returning it to the pool, so the next write starts on a fresh
//! one.

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

use crate::store::Result;

/// An open write transaction on the writer connection.
pub(super) struct Writing {
    conn: PoolConnection<Sqlite>,
    /// Whether a transaction may still be open on `conn`.
    open: bool,
}

impl Writing {
    /// `BEGIN IMMEDIATE`: takes the write lock up front. The guard exists
    /// before the statement is sent: a caller that gives up while BEGIN waits
    /// for the lock (a heartbeat's timeout) must not leave behind a
    /// connection whose BEGIN goes through later with nobody to end it.
    pub(super) async fn begin(pool: &SqlitePool) -> Result<Self> {
        let conn = pool.acquire().await?;
        let mut writing = Self { conn, open: true };
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *writing.conn)
            .await?;
        Ok(writing)
    }

    /// The connection, for the transaction's statements.
    pub(super) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// Commits when the transaction's work succeeded, rolls back when it did
    /// not; returns the work's result, or the commit's error.
    pub(super) async fn finish<T>(mut self, result: Result<T>) -> Result<T> {
        match result {
            Ok(value) => match sqlx::query("COMMIT").execute(&mut *self.conn).await {
                Ok(_) => {
                    self.open = false;
                    Ok(value)
                }
                Err(err) => {
                    self.rollback().await;
                    Err(err.into())
                }
            },
            Err(err) => {
                self.rollback().await;
                Err(err)
            }
        }
    }

    async fn rollback(&mut self) {
        // A failed ROLLBACK (SQLite already rolled back, or the file is
        // failing) leaves `open` set, and dropping closes the connection.
        if sqlx::query("ROLLBACK")
            .execute(&mut *self.conn)
            .await
            .is_ok()
        {
            self.open = false;
        }
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}
