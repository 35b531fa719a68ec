//! A test plugin for hot reload (item mode, task type `reload`): built as
//! version 1 (`reload-v1`) and version 2 (`reload-v2`) from this one source,
//! it returns `{"version", "n"}` so a test can see which version processed
//! each item. `busy_ms` in the payload keeps the call running that long, so
//! calls are in flight while a test swaps the file.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sluice_sdk::{Guest, Mode, Outcome, PluginInfo, TaskError, WorkItem};

#[derive(Deserialize)]
struct Payload {
    n: u64,
    #[serde(default)]
    busy_ms: u64,
}

#[derive(Serialize)]
struct Output<'a> {
    version: &'a str,
    n: u64,
}

struct Reload;

impl Guest for Reload {
    fn describe() -> PluginInfo {
        PluginInfo::new("reload", env!("CARGO_PKG_VERSION"), &["reload"], Mode::Item)
    }

    fn process(items: Vec<WorkItem>) -> Result<Outcome, TaskError> {
        let payload: Payload = sluice_sdk::only(items)?.parse_payload()?;
        let until = Instant::now() + Duration::from_millis(payload.busy_ms);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        Outcome::json(&Output {
            version: env!("CARGO_PKG_VERSION"),
            n: payload.n,
        })
    }
}

sluice_sdk::export!(Reload);
