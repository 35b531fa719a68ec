//! Says when items wait for a task type that no running host serves: an item
//! is accepted whatever its task type (another host may serve it), so
//! without this a typo in a task type, or a plugin nobody deployed, would
//! leave its items waiting in silence.
//!
//! Every minute this host asks the store which waiting task types no host
//! seen recently serves, logs one warning per such task type (again only
//! after it was served in between), and sets the gauge
//! `sluice_unserved_task_type{task_type}` to 1 while it lasts.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::Shared;

/// How often to look.
const EVERY: Duration = Duration::from_secs(60);

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut unserved = BTreeSet::new();
    loop {
        match shared.store.unserved_task_types().await {
            Ok(now) => {
                let now: BTreeSet<String> = now.into_iter().collect();
                for task_type in now.difference(&unserved) {
                    tracing::warn!(
                        %task_type,
                        "items of task type {task_type:?} are waiting and no running host serves it: \
                         load a plugin for it, or cancel its items"
                    );
                    metrics::gauge!("sluice_unserved_task_type", "task_type" => task_type.clone())
                        .set(1.0);
                }
                for task_type in unserved.difference(&now) {
                    metrics::gauge!("sluice_unserved_task_type", "task_type" => task_type.clone())
                        .set(0.0);
                }
                unserved = now;
            }
            Err(err) => tracing::debug!(error = %err, "cannot look for unserved task types"),
        }
        tokio::time::sleep(EVERY).await;
    }
}
