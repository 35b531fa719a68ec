//! Cursor pagination: a page of items in id order and the cursor of the
//! next one. The cursor is opaque to clients (today, the last id seen).

use serde::Serialize;
use utoipa::ToSchema;

use super::problem::Problem;
use crate::store::{ItemQuery, ItemRecord};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// The store query for the page after `cursor` (the first page when none)
/// of `limit` items (default 100); the caller fills in the filters.
pub(super) fn query(limit: Option<u32>, cursor: Option<&str>) -> Result<ItemQuery, Problem> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::invalid(
            Some("limit".into()),
            format!("limit is {limit}; give 1 to {MAX_LIMIT}"),
        ));
    }
    let after_id = match cursor {
        None => 0,
        Some(cursor) => cursor
            .parse::<i64>()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| {
                Problem::invalid(
                    Some("cursor".into()),
                    "cursor is not one this API returned; pass `next_cursor` as it came",
                )
            })?,
    };
    Ok(ItemQuery {
        after_id,
        limit,
        ..ItemQuery::default()
    })
}

/// A page of items, oldest first.
#[derive(Serialize, ToSchema)]
pub(super) struct ItemPage {
    items: Vec<ItemRecord>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

impl ItemPage {
    pub(super) fn new(items: Vec<ItemRecord>, limit: u32) -> Self {
        let next_cursor = (items.len() == limit as usize)
            .then(|| items.last().map(|item| item.id.to_string()))
            .flatten();
        Self { items, next_cursor }
    }
}
