//! What the host knows about each task type it can run: the plugin that
//! handles it and the operator's settings, resolved once at start.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Config, TaskSettings};
use crate::imports::TaskConfig;
use crate::runtime::limits::CallLimits;
use crate::runtime::{Plugin, PluginMode, Registry};
use crate::store::{BatchLimits, Claimable, RetryPolicies, RetryPolicy};

/// Items an item-mode unit fetches at once and calls one by one: enough
/// that a fast plugin's fetches and commits are a small share of its work,
/// few enough that a run of slow calls is cut short by the unit's fair share
/// (checked between calls) rather than held.
const ITEM_RUN: u32 = 32;

/// One runnable task type.
pub struct TaskPlan {
    pub plugin: Arc<Plugin>,
    pub settings: TaskSettings,
    pub limits: CallLimits,
    pub retry: RetryPolicy,
    /// What one fetch takes: a batch for batch-mode plugins, a run of items
    /// called one at a time for item-mode plugins.
    pub batch: BatchLimits,
    pub task_config: TaskConfig,
}

/// Every runnable task type, plus what the store needs for all of them.
pub struct TaskPlans {
    plans: BTreeMap<String, TaskPlan>,
    claimables: Vec<Claimable>,
    policies: RetryPolicies,
}

impl TaskPlans {
    /// Resolves the settings of every task type a loaded plugin handles.
    /// A `[tasks.<type>]` section for a task type no plugin handles is an
    /// error: it is almost always a typo, and silently ignoring it would run
    /// the real task type with the wrong settings.
    pub fn new(config: &Config, registry: &Registry) -> anyhow::Result<Self> {
        for task_type in config.tasks.keys() {
            if registry.get(task_type).is_none() {
                anyhow::bail!(
                    "invalid configuration: `tasks.{task_type}`: no loaded plugin handles task type `{task_type}` (loaded: {}); fix the section name or add the plugin to {}",
                    registry.task_types().collect::<Vec<_>>().join(", "),
                    config.plugins_dir.display()
                );
            }
        }
        let mut plans = BTreeMap::new();
        let mut policies = RetryPolicies {
            default: config.defaults.retry_policy(),
            by_task_type: BTreeMap::new(),
            listed_only: true,
        };
        let mut claimables = Vec::new();
        for task_type in registry.task_types() {
            let plugin = registry.get(task_type).expect("listed task type").clone();
            let settings = config.task(task_type);
            let mut batch = settings.batch_limits();
            if plugin.mode == PluginMode::Item {
                batch = BatchLimits {
                    max_items: ITEM_RUN,
                    max_tokens: u64::MAX,
                };
            }
            let task_config = config
                .tasks
                .get(task_type)
                .map(|section| section.config.clone())
                .unwrap_or_default();
            policies
                .by_task_type
                .insert(task_type.to_string(), settings.retry_policy());
            claimables.push(Claimable {
                task_type: task_type.to_string(),
                gate: settings.gate(),
            });
            plans.insert(
                task_type.to_string(),
                TaskPlan {
                    plugin,
                    limits: config.call_limits(task_type),
                    retry: settings.retry_policy(),
                    batch,
                    task_config: Arc::new(task_config),
                    settings,
                },
            );
        }
        Ok(Self {
            plans,
            claimables,
            policies,
        })
    }

    pub fn get(&self, task_type: &str) -> Option<&TaskPlan> {
        self.plans.get(task_type)
    }

    pub fn task_types(&self) -> impl Iterator<Item = &str> {
        self.plans.keys().map(String::as_str)
    }

    /// The task types to claim, with their gates.
    pub fn claimables(&self) -> &[Claimable] {
        &self.claimables
    }

    /// Retry policies, for the reaper.
    pub fn policies(&self) -> &RetryPolicies {
        &self.policies
    }
}
