//! The dashboard's reads ([`crate::store::views`]) on this backend.

use std::time::Duration;

use sqlx::{PgPool, Row};

use crate::store::Result;
use crate::store::views::{
    HostRecord, Hosts, MinuteCounts, Overview, RECENT_CALLS, TaskTypeOverview, UnitRecord,
    call_stats,
};

async fn now_ms(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar(include_str!("now.sql"))
        .fetch_one(pool)
        .await?)
}

pub(super) async fn overview(pool: &PgPool, window: Duration) -> Result<Overview> {
    let now_ms = now_ms(pool).await?;
    let since = now_ms - window.as_millis() as i64;
    let task_types = sqlx::query(include_str!("overview.sql"))
        .bind(since)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|row| TaskTypeOverview {
            task_type: row.get(0),
            pending: row.get(1),
            oldest_pending_ms: row.get(2),
            claimed_units: row.get(3),
            done_recently: row.get(4),
            dead: row.get(5),
        })
        .collect();
    let minutes = sqlx::query(include_str!("minutes.sql"))
        .bind(since)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|row| MinuteCounts {
            minute_ms: row.get(0),
            done: row.get(1),
            dead: row.get(2),
        })
        .collect();
    let calls: Vec<(String, String)> = sqlx::query(include_str!("recent_calls.sql"))
        .bind(i64::from(RECENT_CALLS))
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    Ok(Overview {
        now_ms,
        task_types,
        minutes,
        calls: call_stats(&calls),
    })
}

pub(super) async fn units(
    pool: &PgPool,
    task_type: &str,
    key_from: &str,
    limit: u32,
) -> Result<Vec<UnitRecord>> {
    Ok(sqlx::query(include_str!("units_from.sql"))
        .bind(task_type)
        .bind(key_from)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
        .iter()
        .map(unit)
        .collect())
}

fn unit(row: &sqlx::postgres::PgRow) -> UnitRecord {
    UnitRecord {
        task_type: row.get(0),
        work_unit_key: row.get(1),
        pending_count: row.get(2),
        pending_tokens: row.get(3),
        oldest_pending_ms: row.get(4),
        available_at_ms: row.get(5),
        claimed_by: row.get(6),
        lease_expires_ms: row.get(7),
        suspect: row.get(8),
    }
}

pub(super) async fn hosts(pool: &PgPool) -> Result<Hosts> {
    let now_ms = now_ms(pool).await?;
    let hosts = sqlx::query(include_str!("hosts.sql"))
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|row| HostRecord {
            id: row.get(0),
            host_name: row.get(1),
            pid: row.get(2),
            version: row.get(3),
            started_at_ms: row.get(4),
            last_seen_ms: row.get(5),
            task_types: row.get(6),
            draining_since_ms: row.get(7),
            claimed_units: row.get(8),
            lease_expires_ms: row.get(9),
        })
        .collect();
    Ok(Hosts { now_ms, hosts })
}
