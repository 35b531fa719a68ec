//! What the host knows about each task type it can run: the plugin that
//! handles it and the operator's settings, resolved at start and again at
//! each plugin reload ([`PlanSet`] holds the current set).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

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
    plugins: Vec<Arc<Plugin>>,
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
        Ok(Self::build(config, registry))
    }

    /// Resolves the settings of every task type a loaded plugin handles,
    /// without the check of [`TaskPlans::new`]: after a reload, a section
    /// whose plugin was removed simply has nothing to run.
    pub fn build(config: &Config, registry: &Registry) -> Self {
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
        Self {
            plugins: registry.plugins().to_vec(),
            plans,
            claimables,
            policies,
        }
    }

    /// The plugins these plans run.
    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
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

    /// The first batch's limits for each of `claimables` (task types of
    /// these plans), in order.
    pub fn batches(&self, claimables: &[Claimable]) -> Vec<BatchLimits> {
        claimables
            .iter()
            .map(|c| self.plans[c.task_type.as_str()].batch)
            .collect()
    }

    /// Retry policies, for the reaper.
    pub fn policies(&self) -> &RetryPolicies {
        &self.policies
    }
}

/// The task plans in force. A reload swaps in a new set at once; a unit keeps
/// the set it started with (an `Arc`), so calls in flight finish on the
/// plugin version they began with and the next claim uses the new one.
pub struct PlanSet {
    current: RwLock<Arc<TaskPlans>>,
}

impl PlanSet {
    pub fn new(plans: TaskPlans) -> Self {
        Self {
            current: RwLock::new(Arc::new(plans)),
        }
    }

    /// The plans in force now.
    pub fn current(&self) -> Arc<TaskPlans> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Puts `plans` in force.
    pub fn replace(&self, plans: TaskPlans) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(plans);
    }
}
