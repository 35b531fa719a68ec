//! The overview: per task type, pending items and the oldest one's age,
//! claimed units, items done in the last hour and dead letters, refreshed
//! every two seconds (htmx polls [`table`]); and a chart of the last hour
//! ([`minutes`]); then call durations (p50, p99), LLM calls and tokens per
//! task type over the latest calls.

use std::fmt::Write;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;

use super::html::{self, esc, url};
use super::{Failure, Page, Ui};
use crate::store::views::{MinuteCounts, Overview, RECENT_CALLS};

/// The overview's window: the chart and the `done` column.
const WINDOW: Duration = Duration::from_secs(3600);

pub(super) async fn page(State(ui): State<Ui>, headers: HeaderMap) -> Page {
    let viewer = ui.look(&headers)?;
    let overview = ui.store.overview(WINDOW).await?;
    let body = format!(
        "<div id=\"overview\" hx-get=\"/ui/overview/table\" hx-trigger=\"every 2s\" hx-swap=\"innerHTML\">{}</div>\
         <h2>Last hour</h2><div id=\"chart\"></div>\
         <link rel=\"stylesheet\" href=\"/ui/static/uPlot.min.css\">\
         <script src=\"/ui/static/uPlot.min.js\"></script><script src=\"/ui/static/chart.js\"></script>",
        render(&overview)
    );
    Ok(Html(html::page(
        "Overview",
        "Overview",
        &ui.frame(&viewer),
        &body,
    )))
}

/// The table alone, for the page's polling.
pub(super) async fn table(State(ui): State<Ui>, headers: HeaderMap) -> Page {
    ui.look(&headers)?;
    Ok(Html(render(&ui.store.overview(WINDOW).await?)))
}

/// Items done and dead-lettered per minute in the last hour, as JSON.
pub(super) async fn minutes(
    State(ui): State<Ui>,
    headers: HeaderMap,
) -> Result<Json<Vec<MinuteCounts>>, Failure> {
    ui.look(&headers)?;
    Ok(Json(ui.store.overview(WINDOW).await?.minutes))
}

fn render(overview: &Overview) -> String {
    if overview.task_types.is_empty() {
        return "<p class=\"quiet\">The queue is empty: nothing pending, done in the last hour or dead.</p>".into();
    }
    let mut rows = String::new();
    for t in &overview.task_types {
        let task = esc(&t.task_type);
        let link = url(&t.task_type);
        let _ = write!(
            rows,
            "<tr data-task-type=\"{task}\"><td><a href=\"/ui/units?task_type={link}\">{task}</a></td>\
             <td class=\"num\" data-field=\"pending\">{}</td><td class=\"num\" data-field=\"oldest\">{}</td>\
             <td class=\"num\" data-field=\"in-flight\">{}</td><td class=\"num\" data-field=\"done\">{}</td>\
             <td class=\"num\" data-field=\"dead\"><a href=\"/ui/dead?task_type={link}\">{}</a></td></tr>",
            t.pending,
            t.oldest_pending_ms
                .map(|at| html::age(overview.now_ms - at))
                .unwrap_or_else(|| "–".into()),
            t.claimed_units,
            t.done_recently,
            t.dead,
        );
    }
    let (done, dead) = overview
        .minutes
        .iter()
        .fold((0, 0), |(done, dead), m| (done + m.done, dead + m.dead));
    let mut calls = String::new();
    for c in &overview.calls {
        let _ = write!(
            calls,
            "<tr data-calls=\"{}\"><td>{}</td><td class=\"num\" data-field=\"calls\">{}</td><td class=\"num\">{} ms</td>\
             <td class=\"num\">{} ms</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&c.task_type),
            esc(&c.task_type),
            c.calls,
            c.p50_ms,
            c.p99_ms,
            c.llm_calls,
            c.input_tokens,
            c.output_tokens,
        );
    }
    let calls = if calls.is_empty() {
        String::new()
    } else {
        format!(
            "<h2>Latest calls</h2><table class=\"calls\"><thead><tr><th>Task type</th><th class=\"num\">Calls</th>\
             <th class=\"num\">p50</th><th class=\"num\">p99</th><th class=\"num\">LLM calls</th>\
             <th class=\"num\">Input tokens</th><th class=\"num\">Output tokens</th></tr></thead><tbody>{calls}</tbody></table>\
             <p class=\"quiet\">Over the latest {RECENT_CALLS} calls of any task type, from the hosts' records of them.</p>"
        )
    };
    format!(
        "<table class=\"overview\"><thead><tr><th>Task type</th><th class=\"num\">Pending</th>\
         <th class=\"num\">Oldest pending</th><th class=\"num\">In flight (units)</th>\
         <th class=\"num\">Done (last hour)</th><th class=\"num\">Dead</th></tr></thead><tbody>{rows}</tbody></table>\
         <p class=\"quiet\">Last hour: {done} done, {dead} dead-lettered. As of {} UTC.</p>{calls}",
        html::time(overview.now_ms)
    )
}
