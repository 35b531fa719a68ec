//! Units and items: search a task type's units by key, a unit's page (its
//! claim, its pending and dead items in order with their error histories,
//! and what its calls returned) and one item's page.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Html;

use super::html::{self, esc, url};
use super::{Failure, Page, Ui};
use crate::store::{ItemQuery, ItemRecord};

/// Units listed per search.
const SEARCH_LIMIT: u32 = 50;
/// A unit's pending and dead items shown on its page.
const ITEM_LIMIT: u32 = 200;
/// A unit's latest outputs shown on its page.
const OUTPUT_LIMIT: usize = 20;

fn field<'a>(query: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

pub(super) async fn search(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Page {
    let viewer = ui.look(&headers)?;
    let task_type = field(&query, "task_type");
    let key = field(&query, "key").unwrap_or_default();
    let mut body = format!(
        "<form class=\"filters\" method=\"get\" action=\"/ui/units\">\
         <label>Task type<input name=\"task_type\" value=\"{}\" required></label>\
         <label>Key (or its start)<input name=\"key\" value=\"{}\"></label>\
         <button>Search</button></form>",
        esc(task_type.unwrap_or_default()),
        esc(key)
    );
    if let Some(task_type) = task_type {
        let units = ui.store.units(task_type, key, SEARCH_LIMIT).await?;
        let units: Vec<_> = units
            .into_iter()
            .take_while(|u| u.work_unit_key.starts_with(key))
            .collect();
        if units.is_empty() {
            let _ = write!(
                body,
                "<p class=\"quiet\">No unit of {} with a key starting {} has pending items or a claim.</p>",
                esc(task_type),
                esc(key)
            );
        } else {
            let mut rows = String::new();
            for u in &units {
                let _ = write!(
                    rows,
                    "<tr><td><a href=\"/ui/unit?task_type={}&amp;key={}\">{}</a></td><td class=\"num\">{}</td>\
                     <td class=\"num\">{}</td><td>{}</td></tr>",
                    url(&u.task_type),
                    url(&u.work_unit_key),
                    esc(&u.work_unit_key),
                    u.pending_count,
                    u.pending_tokens,
                    u.claimed_by
                        .as_deref()
                        .map(esc)
                        .unwrap_or_else(|| "–".into()),
                );
            }
            let _ = write!(
                body,
                "<table><thead><tr><th>Key</th><th class=\"num\">Pending</th><th class=\"num\">Tokens</th>\
                 <th>Claimed by</th></tr></thead><tbody>{rows}</tbody></table>"
            );
        }
        if !key.is_empty() {
            let _ = write!(
                body,
                "<p><a href=\"/ui/unit?task_type={}&amp;key={}\">Open unit {} / {}</a> (its dead letters and outputs too)</p>",
                url(task_type),
                url(key),
                esc(task_type),
                esc(key)
            );
        }
    }
    Ok(Html(html::page(
        "Units",
        "Units",
        &ui.frame(&viewer),
        &body,
    )))
}

pub(super) async fn unit(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Page {
    let viewer = ui.look(&headers)?;
    let (Some(task_type), Some(key)) = (field(&query, "task_type"), field(&query, "key")) else {
        return Err(Failure::Invalid(
            "a unit is a task type and a key: give both `task_type` and `key`".into(),
        ));
    };
    let now_ms = now_ms();
    let row = ui
        .store
        .units(task_type, key, 1)
        .await?
        .into_iter()
        .find(|u| u.work_unit_key == key);
    let items = ui
        .store
        .items(&ItemQuery {
            task_type: Some(task_type.into()),
            work_unit_key: Some(key.into()),
            state: None,
            after_id: 0,
            limit: ITEM_LIMIT,
        })
        .await?;
    let outputs = ui.store.outputs(task_type, key).await?;

    let mut body = String::new();
    match &row {
        Some(u) => {
            let _ = write!(
                body,
                "<dl class=\"facts\"><dt>Pending</dt><dd data-field=\"pending\">{} items, {} tokens</dd>\
                 <dt>Oldest pending</dt><dd>{}</dd><dt>Claimed by</dt><dd data-field=\"claimed-by\">{}</dd>\
                 <dt>Lease expires</dt><dd>{}</dd><dt>Available</dt><dd>{}</dd><dt>Suspect</dt><dd>{}</dd></dl>",
                u.pending_count,
                u.pending_tokens,
                html::ago(now_ms, u.oldest_pending_ms),
                u.claimed_by
                    .as_deref()
                    .map(esc)
                    .unwrap_or_else(|| "nobody".into()),
                html::ago(now_ms, u.lease_expires_ms),
                if u.available_at_ms > now_ms {
                    format!(
                        "backing off, {}",
                        html::ago(now_ms, Some(u.available_at_ms))
                    )
                } else {
                    "now".into()
                },
                if u.suspect {
                    "yes: its last attempt timed out or trapped"
                } else {
                    "no"
                },
            );
        }
        None => body.push_str("<p class=\"quiet\">This unit has nothing pending and no claim.</p>"),
    }
    body.push_str("<h2>Pending and dead items</h2>");
    if items.is_empty() {
        body.push_str("<p class=\"quiet\">None.</p>");
    } else {
        body.push_str(&item_table(&items, now_ms));
        if items.len() == ITEM_LIMIT as usize {
            let _ = write!(
                body,
                "<p class=\"quiet\">The first {ITEM_LIMIT} are shown.</p>"
            );
        }
    }
    body.push_str("<h2>Latest outputs</h2>");
    if outputs.is_empty() {
        body.push_str("<p class=\"quiet\">None kept.</p>");
    } else {
        for output in outputs.iter().rev().take(OUTPUT_LIMIT) {
            let ids: Vec<String> = output
                .item_ids
                .iter()
                .map(|id| format!("<a href=\"/ui/item/{id}\">{id}</a>"))
                .collect();
            let value = output
                .output
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok())
                .map(|v| html::json(&v))
                .unwrap_or_else(|| "<p class=\"quiet\">no output</p>".into());
            let call: Option<serde_json::Value> = output
                .call
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok());
            let by = call
                .as_ref()
                .map(|c| {
                    format!(
                        " · <span data-field=\"plugin\">{} {}</span>, attempt {}, {} ms",
                        esc(c["plugin"].as_str().unwrap_or_default()),
                        esc(c["plugin_version"].as_str().unwrap_or_default()),
                        c["attempt"].as_u64().unwrap_or_default(),
                        c["duration_ms"].as_u64().unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                body,
                "<div class=\"output\"><p>Items {} · {} UTC{by}</p>{value}</div>",
                ids.join(", "),
                html::time(output.created_at_ms)
            );
        }
    }
    let title = format!("Unit {task_type} / {key}");
    Ok(Html(html::page(&title, "Units", &ui.frame(&viewer), &body)))
}

/// Items in order: id, state, attempts, age, last error, and the error
/// history folded under each.
pub(super) fn item_table(items: &[ItemRecord], now_ms: i64) -> String {
    let mut rows = String::new();
    for item in items {
        let failures = item.errors.as_array().map_or(0, Vec::len);
        let history = if failures > 0 {
            format!(
                "<details><summary>{failures} {}</summary>{}</details>",
                if failures == 1 { "failure" } else { "failures" },
                html::errors(&item.errors)
            )
        } else {
            String::new()
        };
        let _ = write!(
            rows,
            "<tr data-item=\"{id}\"><td><a href=\"/ui/item/{id}\">{id}</a></td>\
             <td class=\"state-{state}\">{state}</td><td class=\"num\">{}</td><td>{}</td>\
             <td class=\"error\">{}{history}</td></tr>",
            item.attempts,
            html::ago(now_ms, Some(item.created_at_ms)),
            item.last_error.as_deref().map(esc).unwrap_or_default(),
            id = item.id,
            state = esc(&item.state),
        );
    }
    format!(
        "<table class=\"items\"><thead><tr><th>Item</th><th>State</th><th class=\"num\">Attempts</th>\
         <th>Enqueued</th><th>Last error</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

pub(super) async fn item(State(ui): State<Ui>, headers: HeaderMap, Path(id): Path<String>) -> Page {
    let viewer = ui.look(&headers)?;
    let id: i64 = id
        .parse()
        .map_err(|_| Failure::Invalid(format!("`{id}` is not an item id")))?;
    let item = ui.store.item(id).await?.ok_or_else(|| {
        Failure::NotFound(format!(
            "no item {id}: never enqueued, cancelled, or done and deleted after `retain_done`"
        ))
    })?;
    let now_ms = now_ms();
    let mut body = format!(
        "<dl class=\"facts\"><dt>Unit</dt><dd><a href=\"/ui/unit?task_type={}&amp;key={}\">{} / {}</a></dd>\
         <dt>State</dt><dd class=\"state-{state}\" data-field=\"state\">{state}</dd><dt>Attempts</dt><dd>{}</dd>\
         <dt>Enqueued</dt><dd>{} UTC ({})</dd><dt>Finished</dt><dd>{}</dd><dt>Tokens</dt><dd>{}</dd>\
         <dt>Dedupe key</dt><dd>{}</dd><dt>Runs after</dt><dd>{}</dd></dl>",
        url(&item.task_type),
        url(&item.work_unit_key),
        esc(&item.task_type),
        esc(&item.work_unit_key),
        item.attempts,
        html::time(item.created_at_ms),
        html::ago(now_ms, Some(item.created_at_ms)),
        item.finished_at_ms
            .map(|at| format!("{} UTC", html::time(at)))
            .unwrap_or_else(|| "–".into()),
        item.tokens,
        item.dedupe_key
            .as_deref()
            .map(esc)
            .unwrap_or_else(|| "–".into()),
        item.run_after_ms
            .map(|at| format!("{} UTC", html::time(at)))
            .unwrap_or_else(|| "–".into()),
        state = esc(&item.state),
    );
    if item.state == "dead" && viewer.may_act() {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/ui/dead/confirm\" class=\"actions\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"id\" value=\"{}\">\
             <button name=\"action\" value=\"retry-selected\">Retry</button>\
             <button name=\"action\" value=\"purge-selected\" class=\"danger\">Purge</button></form>",
            esc(&viewer.csrf),
            item.id
        );
    }
    let _ = write!(
        body,
        "<h2>Error history</h2>{}<h2>Payload</h2>{}<h2>Output</h2>{}",
        html::errors(&item.errors),
        html::json(&item.payload),
        item.output
            .as_ref()
            .map(html::json)
            .unwrap_or_else(|| "<p class=\"quiet\">None.</p>".into())
    );
    let title = format!("Item {id}");
    Ok(Html(html::page(&title, "Units", &ui.frame(&viewer), &body)))
}

/// This machine's clock, in ms since the Unix epoch: ages on these pages
/// are approximate to the clock difference with the database.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
