//! One plugin call: a fresh store, the deadline layers, and classification.
//!
//! Every call instantiates the plugin's `InstancePre` into a new [`Store`],
//! runs one export under `tokio::time::timeout` (which also bounds host
//! imports, where epochs cannot reach), and is classified into a
//! [`CallOutcome`]. The store is dropped afterwards whatever happened, so a
//! store that trapped or timed out is never reused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use wasmtime::Store;

use super::bindings::HandlerPre;
use super::bindings::types::{Outcome, PluginInfo, TaskError, WorkItem};
use super::limits::CallLimits;
use super::outcome::{self, CallOutcome};
use super::registry::{Plugin, PluginMode};
use super::sandbox::{self, HostState, StoreSpec};
use crate::imports::{CallContext, Outbound, TaskConfig};
use crate::outbound::UsageMeter;

/// One call to a plugin's `process` export.
pub struct CallRequest {
    /// Items of one work unit, in id order, all of one task type.
    pub items: Vec<WorkItem>,
    pub limits: CallLimits,
    /// The operator's values for this task type, answered by `config.get`.
    pub task_config: TaskConfig,
    pub outbound: Arc<dyn Outbound>,
    /// Stops the call early; it then ends as a `trap` with cause `interrupt`.
    pub cancel: Cancellation,
    /// Counts the call's LLM and HTTP usage; read it after the call. Use
    /// `UsageMeter::default()` when nobody reads it.
    pub usage: UsageMeter,
}

/// Creates a linked pair: [`Canceller::cancel`] stops the calls holding the
/// [`Cancellation`] (a lost claim, a shutdown past its grace period).
pub fn cancellation() -> (Canceller, Cancellation) {
    let (tx, rx) = watch::channel(None);
    (Canceller(tx), Cancellation(rx))
}

/// The sending side of [`cancellation`].
pub struct Canceller(watch::Sender<Option<String>>);

impl Canceller {
    pub fn cancel(&self, reason: impl Into<String>) {
        self.0.send_replace(Some(reason.into()));
    }
}

/// The receiving side of [`cancellation`], handed to calls.
#[derive(Clone)]
pub struct Cancellation(watch::Receiver<Option<String>>);

impl Cancellation {
    /// A cancellation that never fires.
    pub fn never() -> Self {
        Self(watch::channel(None).1)
    }

    /// Resolves with the reason once cancelled; never if the canceller is gone.
    pub async fn cancelled(mut self) -> String {
        let reason = self
            .0
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.clone().unwrap_or_default());
        match reason {
            Ok(reason) => reason,
            Err(_) => std::future::pending().await,
        }
    }
}

/// A call that could not be made; no guest code ran.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("a call needs at least one item")]
    NoItems,
    #[error("plugin `{plugin}` does not handle task type `{task_type}`")]
    WrongTaskType { plugin: String, task_type: String },
    #[error("plugin `{plugin}` processes one item per call, but {count} were given")]
    TooManyItems { plugin: String, count: usize },
    #[error("cannot instantiate plugin `{plugin}`: {message}")]
    Instantiate { plugin: String, message: String },
}

/// Which export to run.
enum Export {
    Describe,
    Process(Vec<WorkItem>),
}

/// What the export returned.
enum Returned {
    Describe(PluginInfo),
    Process(Result<Outcome, TaskError>),
}

/// How running the export went, before classification.
enum Ran {
    Returned(Returned),
    InstantiateFailed(wasmtime::Error),
    Trapped(wasmtime::Error),
    TimedOut,
    Cancelled(String),
}

impl Plugin {
    /// Runs `process` on `request.items` in a fresh sandbox.
    pub async fn call(&self, request: CallRequest) -> Result<CallOutcome, CallError> {
        let task_type = match request.items.first() {
            Some(item) => item.task_type.clone(),
            None => return Err(CallError::NoItems),
        };
        if !self.task_types.contains(&task_type) {
            return Err(CallError::WrongTaskType {
                plugin: self.name.clone(),
                task_type,
            });
        }
        if self.mode == PluginMode::Item && request.items.len() > 1 {
            return Err(CallError::TooManyItems {
                plugin: self.name.clone(),
                count: request.items.len(),
            });
        }
        let limits = request.limits;
        let caller_task_type = task_type.clone();
        let (ran, store) = run(
            &self.pre,
            StoreSpec {
                call: Arc::new(CallContext {
                    plugin: self.name.clone(),
                    task_type,
                    deadline: deadline_after(limits.timeout),
                    usage: request.usage,
                }),
                outbound: request.outbound,
                task_config: request.task_config,
                limits: &limits,
            },
            Export::Process(request.items),
            request.cancel,
        )
        .await;
        let state = store.data();
        state.stdout.finish();
        state.stderr.finish();
        Ok(match ran {
            Ran::Returned(Returned::Process(Ok(out))) => {
                let caller = outcome::Caller {
                    task_type: &caller_task_type,
                    plugin_task_types: &self.task_types,
                };
                outcome::validate(out, &limits, &caller)
            }
            Ran::Returned(Returned::Process(Err(err))) => outcome::from_task_error(err),
            Ran::Returned(Returned::Describe(_)) => unreachable!("process returns an outcome"),
            Ran::Trapped(err) => outcome::from_trap(&err, state, limits.timeout),
            Ran::TimedOut => outcome::timed_out(limits.timeout),
            Ran::Cancelled(reason) => outcome::interrupted(&reason),
            Ran::InstantiateFailed(err) => {
                // A guest whose initial memory is over its limit fails here.
                if err.downcast_ref::<wasmtime::Trap>().is_some() || state.limiter.memory_refused {
                    outcome::from_trap(&err, state, limits.timeout)
                } else {
                    return Err(CallError::Instantiate {
                        plugin: self.name.clone(),
                        message: format!("{err:#}"),
                    });
                }
            }
        })
    }
}

/// Calls `describe` in a fresh sandbox with default limits and `timeout`.
pub(crate) async fn describe(
    pre: &HandlerPre<HostState>,
    outbound: Arc<dyn Outbound>,
    timeout: Duration,
) -> Result<PluginInfo, String> {
    let limits = CallLimits {
        timeout,
        ..CallLimits::default()
    };
    let spec = StoreSpec {
        call: Arc::new(CallContext {
            plugin: String::new(),
            task_type: String::new(),
            deadline: deadline_after(timeout),
            usage: UsageMeter::default(),
        }),
        outbound,
        task_config: TaskConfig::default(),
        limits: &limits,
    };
    let (ran, store) = run(pre, spec, Export::Describe, Cancellation::never()).await;
    match ran {
        Ran::Returned(Returned::Describe(info)) => Ok(info),
        Ran::Returned(Returned::Process(_)) => unreachable!("describe returns plugin-info"),
        Ran::TimedOut => Err(did_not_return(timeout)),
        Ran::Cancelled(reason) => Err(format!("was interrupted: {reason}")),
        Ran::InstantiateFailed(err) => Err(format!("cannot be instantiated: {err:#}")),
        Ran::Trapped(err) => Err(match outcome::from_trap(&err, store.data(), timeout) {
            CallOutcome::Trap { cause, message } => format!("trapped ({cause:?}): {message}"),
            // A guest that spins is stopped by the epoch interrupt, one that
            // sleeps by the timeout: the same failure, reported the same way.
            CallOutcome::Timeout { .. } => did_not_return(timeout),
            CallOutcome::InvalidOutput { reason } => reason,
            other => format!("failed: {}", other.kind()),
        }),
    }
}

/// Why a `describe` that ran into its deadline failed, as the operator reads it.
fn did_not_return(timeout: Duration) -> String {
    format!(
        "did not return within {}",
        humantime::format_duration(timeout)
    )
}

/// Instantiates into a new store and runs `export`, all under the deadline.
/// Returns the store too, so the caller can classify from what it saw.
async fn run(
    pre: &HandlerPre<HostState>,
    spec: StoreSpec<'_>,
    export: Export,
    cancel: Cancellation,
) -> (Ran, Store<HostState>) {
    let deadline = spec.call.deadline;
    let mut store = sandbox::new_store(pre.engine(), spec);
    let work = async {
        let handler = match pre.instantiate_async(&mut store).await {
            Ok(handler) => handler,
            Err(err) => return Ran::InstantiateFailed(err),
        };
        let returned = match export {
            Export::Describe => handler
                .call_describe(&mut store)
                .await
                .map(Returned::Describe),
            Export::Process(items) => handler
                .call_process(&mut store, &items)
                .await
                .map(Returned::Process),
        };
        match returned {
            Ok(returned) => Ran::Returned(returned),
            Err(err) => Ran::Trapped(err),
        }
    };
    let ran = tokio::select! {
        finished = tokio::time::timeout_at(deadline.into(), work) => finished.unwrap_or(Ran::TimedOut),
        reason = cancel.cancelled() => Ran::Cancelled(reason),
    };
    (ran, store)
}

/// `timeout` from now, saturating at a year for absurd timeouts.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}
