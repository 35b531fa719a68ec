//! What producers ask about their items (the HTTP API): one item by id,
//! pages of pending and dead items, and cancelling a unit's pending items.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use crate::store::{ItemQuery, ItemRecord, Result};

pub(super) async fn item(readers: &SqlitePool, id: i64) -> Result<Option<ItemRecord>> {
    let row = sqlx::query(include_str!("item.sql"))
        .bind(id)
        .fetch_optional(readers)
        .await?;
    Ok(row.map(record))
}

pub(super) async fn page(readers: &SqlitePool, query: &ItemQuery) -> Result<Vec<ItemRecord>> {
    let rows = sqlx::query(include_str!("items_page.sql"))
        .bind(&query.state)
        .bind(&query.task_type)
        .bind(&query.work_unit_key)
        .bind(query.after_id)
        .bind(i64::from(query.limit))
        .fetch_all(readers)
        .await?;
    Ok(rows.into_iter().map(record).collect())
}

/// One statement on the one writer: no fetch can mark a batch meanwhile.
pub(super) async fn cancel_pending(writer: &SqlitePool, task_type: &str, key: &str) -> Result<u64> {
    Ok(sqlx::query(include_str!("cancel_pending.sql"))
        .bind(task_type)
        .bind(key)
        .execute(writer)
        .await?
        .rows_affected())
}

fn record(row: SqliteRow) -> ItemRecord {
    let json = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
    ItemRecord {
        id: row.get(0),
        task_type: row.get(1),
        work_unit_key: row.get(2),
        state: row.get(3),
        payload: json(row.get(4)).unwrap_or_default(),
        tokens: u32::try_from(row.get::<i64, _>(5)).unwrap_or(u32::MAX),
        dedupe_key: row.get(6),
        attempts: row.get::<i64, _>(7) as u32,
        last_error: row.get(8),
        errors: json(row.get(9)).unwrap_or_default(),
        created_at_ms: row.get(10),
        run_after_ms: row.get(11),
        finished_at_ms: row.get(12),
        output: json(row.get(13)),
    }
}
