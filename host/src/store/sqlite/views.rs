//! The dashboard's reads ([`crate::store::views`]) on this backend.

use std::time::Duration;

use sqlx::SqlitePool;

use crate::store::Result;
use crate::store::views::{Hosts, Overview, RECENT_CALLS, UnitRecord, call_stats};

async fn now_ms(pool: &SqlitePool) -> Result<i64> {
    Ok(sqlx::query_scalar(include_str!("now.sql"))
        .fetch_one(pool)
        .await?)
}

pub(super) async fn overview(pool: &SqlitePool, window: Duration) -> Result<Overview> {
    let now_ms = now_ms(pool).await?;
    let since = now_ms - window.as_millis() as i64;
    let task_types = sqlx::query_as(include_str!("overview.sql"))
        .bind(since)
        .fetch_all(pool)
        .await?;
    let minutes = sqlx::query_as(include_str!("minutes.sql"))
        .bind(since)
        .fetch_all(pool)
        .await?;
    let calls: Vec<(String, String)> = sqlx::query_as(include_str!("recent_calls.sql"))
        .bind(i64::from(RECENT_CALLS))
        .fetch_all(pool)
        .await?;
    Ok(Overview {
        now_ms,
        task_types,
        minutes,
        calls: call_stats(&calls),
    })
}

pub(super) async fn units(
    pool: &SqlitePool,
    task_type: &str,
    key_from: &str,
    limit: u32,
) -> Result<Vec<UnitRecord>> {
    Ok(sqlx::query_as(include_str!("units_from.sql"))
        .bind(task_type)
        .bind(key_from)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?)
}

pub(super) async fn hosts(pool: &SqlitePool) -> Result<Hosts> {
    let now_ms = now_ms(pool).await?;
    let hosts = sqlx::query_as(include_str!("hosts.sql"))
        .fetch_all(pool)
        .await?;
    Ok(Hosts { now_ms, hosts })
}
