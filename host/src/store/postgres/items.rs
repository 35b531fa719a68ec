//! What producers ask about their items (the HTTP API): one item by id,
//! pages of pending and dead items, and cancelling a unit's pending items.

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::custom_plan;
use crate::store::{ItemQuery, ItemRecord, Result};

pub(super) async fn item(pool: &PgPool, id: i64) -> Result<Option<ItemRecord>> {
    let row = sqlx::query(include_str!("item.sql"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(record))
}

pub(super) async fn page(pool: &PgPool, query: &ItemQuery) -> Result<Vec<ItemRecord>> {
    let rows = custom_plan(include_str!("items_page.sql"))
        .bind(&query.state)
        .bind(&query.task_type)
        .bind(&query.work_unit_key)
        .bind(query.after_id)
        .bind(i64::from(query.limit))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(record).collect())
}

pub(super) async fn cancel_pending(pool: &PgPool, task_type: &str, key: &str) -> Result<u64> {
    let mut tx = pool.begin().await?;
    // The unit row first: a fetch marking its batch holds it too.
    sqlx::query(
        "SELECT 1 FROM sluice_units WHERE task_type = $1 AND work_unit_key = $2 FOR UPDATE",
    )
    .bind(task_type)
    .bind(key)
    .execute(&mut *tx)
    .await?;
    let cancelled = sqlx::query(include_str!("cancel_pending.sql"))
        .bind(task_type)
        .bind(key)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(cancelled)
}

fn record(row: PgRow) -> ItemRecord {
    let json = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
    ItemRecord {
        id: row.get(0),
        task_type: row.get(1),
        work_unit_key: row.get(2),
        state: row.get(3),
        payload: json(row.get(4)).unwrap_or_default(),
        tokens: u32::try_from(row.get::<i64, _>(5)).unwrap_or(u32::MAX),
        dedupe_key: row.get(6),
        attempts: row.get::<i32, _>(7) as u32,
        last_error: row.get(8),
        errors: json(row.get(9)).unwrap_or_default(),
        created_at_ms: row.get(10),
        run_after_ms: row.get(11),
        finished_at_ms: row.get(12),
        output: json(row.get(13)),
    }
}
