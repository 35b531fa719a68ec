//! The `config` import: the operator's values for the task type being processed.

use crate::runtime::bindings::config::Host;
use crate::runtime::sandbox::HostState;

impl Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.task_config.get(&key).cloned()
    }
}
