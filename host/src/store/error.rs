//! Which database errors are outages, which are contention on a row, and
//! which are refusals.
//!
//! The worker must never guess from an error code: an outage mistaken for a
//! refusal dead-letters work that succeeded, and a refusal mistaken for an
//! outage retries forever while the unit stays claimed. Each backend knows its
//! own codes ([`super::postgres::errors`], [`super::sqlite::errors`]); this
//! module sends every `sqlx` error to the backend that raised it.

use sqlx::error::DatabaseError;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

/// What a database error means for the write that met it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The database cannot take writes now; it may later.
    Outage,
    /// A row the write needs is held by another transaction; the database is
    /// otherwise fine, and the write may succeed later.
    Contention,
    /// The database refuses the write itself, and will again.
    Refusal,
}

/// What `err` means: see [`Kind`].
pub(super) fn kind(err: &sqlx::Error) -> Kind {
    match err {
        // The connection or the pool failed, not the statement.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed
        | sqlx::Error::InvalidSavePointStatement => Kind::Outage,
        sqlx::Error::Database(db) => database_kind(db.as_ref()),
        _ => Kind::Refusal,
    }
}

fn database_kind(db: &dyn DatabaseError) -> Kind {
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        return super::postgres::errors::kind(pg.code());
    }
    if db.try_downcast_ref::<SqliteError>().is_some() {
        let code = db.code().and_then(|code| code.parse::<i32>().ok());
        return code.map_or(Kind::Refusal, super::sqlite::errors::kind);
    }
    Kind::Refusal
}
