//! Hot reload of the plugins folder while the host runs.
//!
//! `sluice run` looks at the folder's `*.wasm` files (names, sizes and
//! modification times) every [`POLL`], and reloads once a change has held
//! still for one more look, so a file still being copied is not read half
//! written. `SIGHUP` reloads at once. A reload compiles and checks changed
//! files off the claim loop ([`registry::rescan`]), then swaps the task plans
//! in one step: units already running keep the plans they started with, so
//! calls in flight finish on the old version and the next claim uses the new
//! one. A file that fails is refused with one log line and changes nothing;
//! a removed file's task types stop being claimed. A mtime poll was chosen
//! over an OS file watcher: one `read_dir` a second is all it costs, it needs
//! no dependency, and it behaves the same on every filesystem (network and
//! container mounts included).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{Phase, Shared, TaskPlans};
use crate::runtime::registry::{self, Change};
use crate::runtime::{Plugin, Registry, Runtime};

/// How often the plugins folder is looked at.
pub const POLL: Duration = Duration::from_secs(1);

/// What one reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReloadSummary {
    /// `name version (file)` of each plugin added.
    pub added: Vec<String>,
    /// `name old -> new (file)` of each plugin replaced.
    pub replaced: Vec<String>,
    /// `name version (file)` of each plugin removed.
    pub removed: Vec<String>,
    /// Why each refused file was refused; its previous version keeps serving.
    pub refused: Vec<String>,
}

impl ReloadSummary {
    /// Whether the plugins in force changed.
    pub fn changed(&self) -> bool {
        !(self.added.is_empty() && self.replaced.is_empty() && self.removed.is_empty())
    }
}

/// Rescans `dir` and puts the result in force; see the module documentation.
pub(crate) async fn reload(shared: &Shared, runtime: &Runtime, dir: &Path) -> ReloadSummary {
    let _one_at_a_time = shared.reloading.lock().await;
    let mut summary = ReloadSummary::default();
    let current = shared.plans.current();
    let rescan = match registry::rescan(runtime, dir, current.plugins()).await {
        Ok(rescan) => rescan,
        Err(err) => {
            tracing::warn!("plugin reload skipped, the loaded plugins keep serving: {err}");
            summary.refused.push(err.to_string());
            return summary;
        }
    };
    for err in &rescan.refused {
        tracing::warn!("plugin refused, the version loaded before (if any) keeps serving: {err}");
        summary.refused.push(err.to_string());
    }
    let describe = |p: &Plugin| format!("{} {} ({})", p.name, p.version, p.path.display());
    for change in &rescan.changes {
        match change {
            Change::Added(new) => {
                tracing::info!(plugin = %new.name, version = %new.version, task_types = ?new.task_types, file = %new.path.display(), "plugin added");
                summary.added.push(describe(new));
            }
            Change::Replaced { old, new } => {
                tracing::info!(plugin = %new.name, from = %old.version, to = %new.version, task_types = ?new.task_types, file = %new.path.display(), "plugin replaced: calls in flight finish on the old version");
                summary.replaced.push(format!(
                    "{} {} -> {} ({})",
                    new.name,
                    old.version,
                    new.version,
                    new.path.display()
                ));
            }
            Change::Removed(old) => {
                tracing::info!(plugin = %old.name, version = %old.version, task_types = ?old.task_types, file = %old.path.display(), "plugin removed: its task types are no longer claimed");
                summary.removed.push(describe(old));
            }
        }
    }
    if summary.changed() {
        let count = rescan.plugins.len();
        let plans = TaskPlans::build(&shared.config, &Registry::from_plugins(rescan.plugins));
        shared.plans.replace(plans);
        shared.health.set_plugins(count);
        shared.wake.notify_one();
    }
    summary
}

/// Reloads `dir` when its `*.wasm` files change or on `SIGHUP`, until the
/// host stops running.
pub(crate) async fn watch(shared: Arc<Shared>, runtime: Runtime, dir: PathBuf) {
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGHUP; plugin reloads follow file changes only");
            None
        }
    };
    let mut phase = shared.phase.subscribe();
    let mut seen = fingerprint(&dir);
    let mut pending: Option<Fingerprint> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {
                let now = fingerprint(&dir);
                if now == seen {
                    pending = None;
                } else if pending.as_ref() == Some(&now) {
                    reload(&shared, &runtime, &dir).await;
                    seen = now;
                    pending = None;
                } else {
                    pending = Some(now);
                }
            }
            Some(()) = async { hangup.as_mut()?.recv().await } => {
                tracing::info!("SIGHUP: reloading plugins");
                reload(&shared, &runtime, &dir).await;
                seen = fingerprint(&dir);
                pending = None;
            }
            _ = phase.changed() => {}
        }
        if *phase.borrow() != Phase::Running {
            return;
        }
    }
}

/// What the folder's `*.wasm` files look like from outside: name, size and
/// modification time. `None` while the folder cannot be read.
type Fingerprint = Option<Vec<(PathBuf, u64, Option<SystemTime>)>>;

fn fingerprint(dir: &Path) -> Fingerprint {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| registry::is_plugin_file(&entry.path()))
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            Some((entry.path(), meta.len(), meta.modified().ok()))
        })
        .collect();
    files.sort();
    Some(files)
}
