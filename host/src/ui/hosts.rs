//! Hosts and plugins: every host process the database knows (its version,
//! the units it holds, its heartbeat's age, its lease and whether it is
//! draining), and the plugins
//! this process runs (as `/v1/plugins` lists them) with each task type's
//! limits from the configuration.

use std::fmt::Write;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;

use super::html::{self, esc};
use super::{Page, Ui};
use crate::store::RUNNING_HOST_SEEN_WITHIN;

pub(super) async fn page(State(ui): State<Ui>, headers: HeaderMap) -> Page {
    let viewer = ui.look(&headers)?;
    let hosts = ui.store.hosts().await?;
    let mut body = String::from("<h2>Hosts</h2>");
    if hosts.hosts.is_empty() {
        body.push_str("<p class=\"quiet\">No host has registered with this database.</p>");
    } else {
        let mut rows = String::new();
        for host in &hosts.hosts {
            let silent = hosts.now_ms - host.last_seen_ms;
            let status = match host.draining_since_ms {
                _ if silent > RUNNING_HOST_SEEN_WITHIN.as_millis() as i64 => {
                    "<span class=\"state-dead\">gone quiet</span>".to_string()
                }
                Some(since) => format!(
                    "<span class=\"state-pending\">draining</span> since {}",
                    html::ago(hosts.now_ms, Some(since))
                ),
                None => "running".into(),
            };
            let task_types = host
                .task_types
                .as_deref()
                .and_then(|json| serde_json::from_str::<Vec<String>>(json).ok())
                .map(|types| types.iter().map(|t| esc(t)).collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|| "all".into());
            let _ = write!(
                rows,
                "<tr data-host=\"{}\"><td>{}<br><span class=\"quiet\">{}</span></td><td>{}</td>\
                 <td>{}</td><td class=\"num\" data-field=\"slots\">{}</td><td>{}</td><td>{}</td><td data-field=\"status\">{}</td><td>{}</td></tr>",
                esc(&host.id),
                esc(&host.host_name),
                esc(&host.id),
                host.pid,
                esc(&host.version),
                host.claimed_units,
                html::ago(hosts.now_ms, Some(host.last_seen_ms)),
                html::ago(hosts.now_ms, host.lease_expires_ms),
                status,
                task_types,
            );
        }
        let _ = write!(
            body,
            "<table><thead><tr><th>Host</th><th>PID</th><th>Version</th><th class=\"num\">Units held</th>\
             <th>Last heartbeat</th><th>Lease expires</th><th>Status</th><th>Task types</th></tr></thead>\
             <tbody>{rows}</tbody></table>"
        );
    }
    body.push_str("<h2>Plugins</h2>");
    match &ui.plugins {
        None => body.push_str(
            "<p class=\"quiet\">This process (<code>sluice ui</code>) runs no plugins: the hosts above list the task types theirs serve.</p>",
        ),
        Some(plugins) => {
            let mut rows = String::new();
            for plugin in plugins.loaded() {
                for task_type in &plugin.task_types {
                    let limits = ui.config.task(task_type);
                    let _ = write!(
                        rows,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
                         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} MiB</td></tr>",
                        esc(&plugin.name),
                        esc(&plugin.version),
                        esc(plugin.mode.as_str()),
                        esc(task_type),
                        humantime::format_duration(limits.timeout),
                        limits.max_attempts,
                        limits.batch_max_items,
                        limits.batch_max_tokens,
                        limits.memory_mib,
                    );
                }
            }
            let _ = write!(
                body,
                "<table><thead><tr><th>Plugin</th><th>Version</th><th>Mode</th><th>Task type</th><th>Timeout</th>\
                 <th class=\"num\">Max attempts</th><th class=\"num\">Batch items</th><th class=\"num\">Batch tokens</th>\
                 <th class=\"num\">Memory</th></tr></thead><tbody>{rows}</tbody></table>"
            );
        }
    }
    Ok(Html(html::page(
        "Hosts & plugins",
        "Hosts & plugins",
        &ui.frame(&viewer),
        &body,
    )))
}
