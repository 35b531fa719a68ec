//! A test-only batch plugin, for poison isolation inside batches.
//!
//! Task type `batch-echo` answers a batch with the JSON array of its items'
//! payloads, unless one of the items' payloads mentions `"poison"`: then the
//! whole call traps, the way a plugin that chokes on one bad message in a
//! conversation takes its batch down with it.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "handler",
});

struct Batcher;

impl Guest for Batcher {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "batcher".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            task_types: vec!["batch-echo".into()],
            mode: sluice::task::types::Mode::Batch,
        }
    }

    fn process(items: Vec<WorkItem>) -> Result<Outcome, TaskError> {
        if let Some(poison) = items.iter().find(|i| i.payload.contains("\"poison\"")) {
            panic!("batcher choked on item {}", poison.id);
        }
        let payloads: Vec<&str> = items.iter().map(|i| i.payload.as_str()).collect();
        Ok(Outcome {
            output: Some(format!("[{}]", payloads.join(","))),
            enqueue: Vec::new(),
        })
    }
}

export!(Batcher);
