//! Dead letters: filter by task type, key, error text and age, see each
//! one's error history, and retry or purge one, a selection, or every one a
//! filter matches, after a confirmation page that says how many it will
//! touch. Lists walk the dead-letter index a page at a time through
//! [`Store::items`] (the API's path); task type and key narrow the walk,
//! error text and age are checked on the rows it reads. Retry and purge are
//! the API's [`Store::dead_retry`] and [`Store::dead_purge`]: one statement
//! for a task type or a unit, one per item otherwise.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Html;

use super::html::{self, esc, url};
use super::units::{item_table, now_ms};
use super::{Failure, Form, Page, Ui};
use crate::store::{DeadFilter, ItemQuery, ItemRecord, Store, StoreError, parse_delay};

/// Dead letters per page of the list.
const PAGE: usize = 50;
/// Rows read per round trip while walking the dead-letter index.
const WALK: u32 = 1000;
/// The most dead letters one selection may name.
const MAX_SELECTED: usize = 1000;

/// Which dead letters: every one matching all the filters given.
#[derive(Default)]
struct DeadQuery {
    task_type: Option<String>,
    key: Option<String>,
    /// Text any of its errors contains, ignoring case.
    error: Option<String>,
    /// Dead for at least this long.
    older_than: Option<(String, Duration)>,
}

impl DeadQuery {
    fn read<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, Failure> {
        let text = |name: &str| get(name).map(str::trim).filter(|v| !v.is_empty());
        let query = Self {
            task_type: text("task_type").map(String::from),
            key: text("key").map(String::from),
            error: text("error").map(String::from),
            older_than: text("older_than")
                .map(|v| {
                    parse_delay(v).map(|d| (v.to_string(), d)).map_err(|_| {
                        Failure::Invalid(format!(
                            "older than `{v}` is not a duration such as 90s, 15m, 1h 30m or 2d"
                        ))
                    })
                })
                .transpose()?,
        };
        if query.key.is_some() && query.task_type.is_none() {
            return Err(Failure::Invalid(
                "a key needs a task type: a unit is a task type and a key".into(),
            ));
        }
        Ok(query)
    }

    fn matches(&self, item: &ItemRecord, now_ms: i64) -> bool {
        let error_ok = self.error.as_deref().is_none_or(|needle| {
            let needle = needle.to_lowercase();
            let contains = |text: &str| text.to_lowercase().contains(&needle);
            item.last_error.as_deref().is_some_and(contains)
                || item.errors.as_array().is_some_and(|entries| {
                    entries
                        .iter()
                        .any(|e| e["error"].as_str().is_some_and(contains))
                })
        });
        let age_ok = self.older_than.as_ref().is_none_or(|(_, age)| {
            let dead_at = item.finished_at_ms.unwrap_or(item.created_at_ms);
            now_ms - dead_at >= age.as_millis() as i64
        });
        error_ok && age_ok
    }

    /// The store's own filter, when task type and key are all there is.
    fn store_filter(&self) -> Option<DeadFilter> {
        if self.error.is_some() || self.older_than.is_some() {
            return None;
        }
        match (&self.task_type, &self.key) {
            (Some(task_type), Some(key)) => Some(DeadFilter::Key {
                task_type: task_type.clone(),
                work_unit_key: key.clone(),
            }),
            (Some(task_type), None) => Some(DeadFilter::TaskType(task_type.clone())),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = &self.task_type {
            parts.push(format!("task type <code>{}</code>", esc(t)));
        }
        if let Some(k) = &self.key {
            parts.push(format!("key <code>{}</code>", esc(k)));
        }
        if let Some(e) = &self.error {
            parts.push(format!("an error containing “{}”", esc(e)));
        }
        if let Some((text, _)) = &self.older_than {
            parts.push(format!("dead for at least {}", esc(text)));
        }
        if parts.is_empty() {
            "every dead letter".into()
        } else {
            format!("every dead letter with {}", parts.join(", "))
        }
    }

    fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = Vec::new();
        for (name, value) in [
            ("task_type", self.task_type.as_deref()),
            ("key", self.key.as_deref()),
            ("error", self.error.as_deref()),
            (
                "older_than",
                self.older_than.as_ref().map(|(t, _)| t.as_str()),
            ),
        ] {
            if let Some(value) = value {
                pairs.push((name, value));
            }
        }
        pairs
    }

    fn hidden_fields(&self) -> String {
        self.pairs()
            .iter()
            .map(|(n, v)| format!("<input type=\"hidden\" name=\"{n}\" value=\"{}\">", esc(v)))
            .collect()
    }

    fn query_string(&self) -> String {
        self.pairs()
            .iter()
            .map(|(n, v)| format!("{n}={}", url(v)))
            .collect::<Vec<_>>()
            .join("&amp;")
    }

    /// Up to `want` matching dead letters after id `after_id`, in id order,
    /// and whether the walk stopped before the end.
    async fn walk(
        &self,
        store: &dyn Store,
        mut after_id: i64,
        want: usize,
    ) -> Result<(Vec<ItemRecord>, bool), StoreError> {
        let now_ms = now_ms();
        // Without a filter on the rows' text or age every row matches, so
        // read no more than are wanted.
        let limit = if self.error.is_none() && self.older_than.is_none() {
            want.clamp(1, WALK as usize) as u32
        } else {
            WALK
        };
        let mut found = Vec::new();
        loop {
            let page = store
                .items(&ItemQuery {
                    task_type: self.task_type.clone(),
                    work_unit_key: self.key.clone(),
                    state: Some("dead".into()),
                    after_id,
                    limit,
                })
                .await?;
            let full = page.len() == limit as usize;
            for item in page {
                after_id = item.id;
                if self.matches(&item, now_ms) {
                    found.push(item);
                    if found.len() == want {
                        return Ok((found, true));
                    }
                }
            }
            if !full {
                return Ok((found, false));
            }
        }
    }
}

pub(super) async fn list(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Page {
    let viewer = ui.look(&headers)?;
    let filter = DeadQuery::read(|name| query.get(name).map(String::as_str))?;
    let after_id = match query.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(cursor) => cursor.parse().map_err(|_| {
            Failure::Invalid("cursor is not one this page gave; follow its “next” link".into())
        })?,
    };
    let (items, more) = filter.walk(ui.store.as_ref(), after_id, PAGE).await?;
    let mut body = format!(
        "<form class=\"filters\" method=\"get\" action=\"/ui/dead\">\
         <label>Task type<input name=\"task_type\" value=\"{}\"></label>\
         <label>Key<input name=\"key\" value=\"{}\"></label>\
         <label>Error contains<input name=\"error\" value=\"{}\"></label>\
         <label>Dead for at least<input name=\"older_than\" value=\"{}\" placeholder=\"1h\"></label>\
         <button>Filter</button></form>",
        esc(filter.task_type.as_deref().unwrap_or_default()),
        esc(filter.key.as_deref().unwrap_or_default()),
        esc(filter.error.as_deref().unwrap_or_default()),
        esc(filter
            .older_than
            .as_ref()
            .map(|(t, _)| t.as_str())
            .unwrap_or_default()),
    );
    if items.is_empty() {
        body.push_str("<p class=\"quiet\">No dead letters match.</p>");
    } else {
        let now_ms = now_ms();
        let table = item_table(&items, now_ms);
        if viewer.may_act() {
            // Each row gets a checkbox; the buttons act on the ticked rows
            // or on every match of the filter, after a confirmation.
            let mut table = table;
            for item in &items {
                let row = format!("<tr data-item=\"{id}\">", id = item.id);
                let with_box = format!(
                    "<tr data-item=\"{id}\"><td><input type=\"checkbox\" name=\"id\" value=\"{id}\" aria-label=\"select {id}\"></td>",
                    id = item.id
                );
                table = table.replacen(&row, &with_box, 1);
            }
            let table = table.replacen("<thead><tr>", "<thead><tr><th></th>", 1);
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/ui/dead/confirm\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">{}\
                 <div class=\"actions\"><button name=\"action\" value=\"retry-selected\">Retry selected</button>\
                 <button name=\"action\" value=\"purge-selected\" class=\"danger\">Purge selected</button>\
                 <button name=\"action\" value=\"retry-all\">Retry all matching</button>\
                 <button name=\"action\" value=\"purge-all\" class=\"danger\">Purge all matching</button></div>{table}</form>",
                esc(&viewer.csrf),
                filter.hidden_fields(),
            );
        } else {
            body.push_str(&table);
        }
        if more && let Some(last) = items.last() {
            let query = filter.query_string();
            let sep = if query.is_empty() { "" } else { "&amp;" };
            let _ = write!(
                body,
                "<p><a href=\"/ui/dead?{query}{sep}cursor={}\">Next {PAGE} →</a></p>",
                last.id
            );
        }
    }
    Ok(Html(html::page(
        "Dead letters",
        "Dead letters",
        &ui.frame(&viewer),
        &body,
    )))
}

/// What an action does, to which dead letters.
struct Action {
    purge: bool,
    /// The ticked ids; `None` for every dead letter the filter matches.
    ids: Option<Vec<i64>>,
    filter: DeadQuery,
}

impl Action {
    fn read(form: &Form) -> Result<Self, Failure> {
        let (purge, selected) = match form.get("action") {
            Some("retry-selected") => (false, true),
            Some("purge-selected") => (true, true),
            Some("retry-all") => (false, false),
            Some("purge-all") => (true, false),
            _ => {
                return Err(Failure::Invalid(
                    "say what to do: retry or purge, the selected dead letters or all matching"
                        .into(),
                ));
            }
        };
        let filter = DeadQuery::read(|name| form.get(name))?;
        let ids = if selected {
            let ids = form
                .all("id")
                .map(|id| {
                    id.parse::<i64>()
                        .map_err(|_| Failure::Invalid(format!("`{id}` is not an item id")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if ids.is_empty() {
                return Err(Failure::Invalid(
                    "no dead letter is selected: tick some, or act on all matching".into(),
                ));
            }
            if ids.len() > MAX_SELECTED {
                return Err(Failure::Invalid(format!(
                    "{} dead letters are selected; select at most {MAX_SELECTED}, or act on all matching a filter",
                    ids.len()
                )));
            }
            Some(ids)
        } else {
            None
        };
        Ok(Self { purge, ids, filter })
    }

    fn verb(&self) -> &'static str {
        if self.purge { "purge" } else { "retry" }
    }

    fn field(&self) -> &'static str {
        match (self.purge, self.ids.is_some()) {
            (false, true) => "retry-selected",
            (true, true) => "purge-selected",
            (false, false) => "retry-all",
            (true, false) => "purge-all",
        }
    }

    /// The dead letters it would touch now, by id.
    async fn targets(&self, store: &dyn Store) -> Result<Vec<i64>, StoreError> {
        match &self.ids {
            Some(ids) => {
                let mut dead = Vec::new();
                for id in ids {
                    if store
                        .item(*id)
                        .await?
                        .is_some_and(|item| item.state == "dead")
                    {
                        dead.push(*id);
                    }
                }
                Ok(dead)
            }
            None => Ok(self
                .filter
                .walk(store, 0, usize::MAX)
                .await?
                .0
                .into_iter()
                .map(|item| item.id)
                .collect()),
        }
    }

    async fn run(&self, store: &dyn Store) -> Result<u64, StoreError> {
        let one = move |filter: DeadFilter| async move {
            if self.purge {
                store.dead_purge(&filter).await
            } else {
                store.dead_retry(&filter).await
            }
        };
        // Selected ids go straight to the statement, which touches only the
        // ones still dead; a filter the store can take is one statement.
        let ids = match (&self.ids, self.filter.store_filter()) {
            (Some(ids), _) => ids.clone(),
            (None, Some(filter)) => return one(filter).await,
            (None, None) => self.targets(store).await?,
        };
        let mut count = 0;
        for id in ids {
            count += one(DeadFilter::Id(id)).await?;
        }
        Ok(count)
    }

    fn hidden_fields(&self) -> String {
        let mut fields = format!(
            "<input type=\"hidden\" name=\"action\" value=\"{}\">{}",
            self.field(),
            self.filter.hidden_fields()
        );
        for id in self.ids.iter().flatten() {
            let _ = write!(fields, "<input type=\"hidden\" name=\"id\" value=\"{id}\">");
        }
        fields
    }

    fn back(&self) -> String {
        format!("/ui/dead?{}", self.filter.query_string())
    }
}

/// How many dead letters an action would touch, and a button to do it.
pub(super) async fn confirm(State(ui): State<Ui>, headers: HeaderMap, body: Bytes) -> Page {
    let form = Form::parse(&body);
    let viewer = ui.act(&headers, &form)?;
    let action = Action::read(&form)?;
    let count = action.targets(ui.store.as_ref()).await?.len();
    let which = match &action.ids {
        Some(_) => "of the selected dead letters".to_string(),
        None => format!("matching: {}", action.filter.describe()),
    };
    let verb = action.verb();
    let mut body = format!(
        "<p data-field=\"count\" data-count=\"{count}\">This will {verb} <strong>{count}</strong> \
         {noun} ({which}).</p>",
        noun = if count == 1 {
            "dead letter"
        } else {
            "dead letters"
        },
    );
    if action.purge {
        body.push_str("<p>Purged items are deleted; this cannot be undone.</p>");
    } else {
        body.push_str(
            "<p>Retried items go back to pending with their attempts reset, behind their units' other items.</p>",
        );
    }
    if count > 0 {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/ui/dead/act\" class=\"actions\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">{}\
             <button{}>Yes, {verb} {count}</button><a href=\"{}\">Cancel</a></form>",
            esc(&viewer.csrf),
            action.hidden_fields(),
            if action.purge {
                " class=\"danger\""
            } else {
                ""
            },
            action.back(),
        );
    } else {
        let _ = write!(body, "<p><a href=\"{}\">Back</a></p>", action.back());
    }
    let title = if action.purge {
        "Purge dead letters?"
    } else {
        "Retry dead letters?"
    };
    Ok(Html(html::page(
        title,
        "Dead letters",
        &ui.frame(&viewer),
        &body,
    )))
}

/// Does what a confirmation page asked.
pub(super) async fn act(State(ui): State<Ui>, headers: HeaderMap, body: Bytes) -> Page {
    let form = Form::parse(&body);
    let viewer = ui.act(&headers, &form)?;
    let action = Action::read(&form)?;
    let count = action.run(ui.store.as_ref()).await?;
    tracing::info!(
        action = action.field(),
        count,
        by = viewer.name.as_deref().unwrap_or("open dashboard"),
        "dead letters handled in the dashboard"
    );
    let done = if action.purge { "Purged" } else { "Retried" };
    let body = format!(
        "<p data-field=\"done\" data-count=\"{count}\">{done} {count} {}.</p><p><a href=\"{}\">Back to the dead letters</a></p>",
        if count == 1 {
            "dead letter"
        } else {
            "dead letters"
        },
        action.back()
    );
    Ok(Html(html::page(
        done,
        "Dead letters",
        &ui.frame(&viewer),
        &body,
    )))
}
