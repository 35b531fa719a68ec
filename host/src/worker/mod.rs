//! The running host: the pool of slots that process claimed work units, and the
//! maintenance tasks that keep the queue honest while every slot is busy.
//!
//! [`Host::start`] spawns, each on its own tokio task:
//! - the claim loop ([`pool`]), which claims units with their first batches,
//!   as many as there are free slots plus a short queue waiting for one, and
//!   starts one unit task ([`unit`]) per claim;
//! - the committer ([`group_commit`]), which writes the completions of every
//!   slot together;
//! - the heartbeat ([`heartbeat`]), which extends every lease this process
//!   holds in one statement and cancels units whose claim was lost;
//! - the reaper ([`reaper`]), which expires the leases of dead processes;
//! - on Postgres, a listener that wakes the claim loop when work arrives.
//!
//! None of the maintenance tasks ever waits for a slot, so a pool whose every
//! slot is stuck in a hung call still heartbeats, reaps and reports itself
//! healthy or not ([`health`]). Shutdown is two-phase ([`Host::drain`],
//! then cancellation after the grace period); see [`shutdown`].

mod backoff;
mod commit;
mod group_commit;
mod guests;
mod health;
mod heartbeat;
mod pool;
mod reaper;
mod reload;
mod running;
pub mod shutdown;
mod suspects;
mod tasks;
mod unavailable;
mod unit;
mod unserved;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::flow::{BreakerReport, Flow};
use crate::imports::Outbound;
use crate::runtime::{Registry, Runtime};
use crate::store::{Store, WorkerInfo};

pub use health::{Health, HealthReport};
pub use reload::ReloadSummary;
pub use tasks::{PlanSet, TaskPlan, TaskPlans};

use running::Running;

/// Where the host is in its life. Moves only forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Claiming and processing.
    Running,
    /// Shutting down: no new claims or batches; running calls may finish.
    Draining,
    /// The grace period is over: running calls are cancelled and their units
    /// released without counting an attempt.
    Cancelling,
}

/// How long shutdown waits to record that the host is draining.
const DRAIN_MARK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the host is built from.
pub struct HostParts {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub outbound: Arc<dyn Outbound>,
    pub worker: WorkerInfo,
}

/// State every task of the host shares.
pub(crate) struct Shared {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) outbound: Arc<dyn Outbound>,
    /// The outbound side's circuit breakers, if it has providers.
    pub(crate) flow: Option<Arc<Flow>>,
    pub(crate) worker: WorkerInfo,
    /// The task plans in force; a plugin reload replaces them.
    pub(crate) plans: PlanSet,
    /// Where plugin calls run, apart from everything else.
    pub(crate) guests: guests::GuestThreads,
    pub(crate) slots: Arc<Semaphore>,
    /// The suspect units among them, held to a share of the slots.
    pub(crate) suspects: Arc<suspects::Suspects>,
    pub(crate) running: Arc<Running>,
    /// When a unit last freed its slot: the claim loop claims ahead only
    /// while slots turn over.
    pub(crate) turnover: pool::Turnover,
    /// Units waiting only for their last write, slot let go: the claim loop
    /// does not count them against its room.
    pub(crate) finishing: pool::Finishing,
    /// Writes the completions of every slot together.
    pub(crate) group_commit: group_commit::GroupCommit,
    pub(crate) health: Arc<Health>,
    /// Wakes the claim loop: new work was signalled or a slot was freed.
    pub(crate) wake: Notify,
    pub(crate) phase: watch::Sender<Phase>,
    /// Test and operator hook: while true the claim loop does not tick.
    pub(crate) paused: watch::Sender<bool>,
    /// Held by a plugin reload, so two never interleave.
    pub(crate) reloading: tokio::sync::Mutex<()>,
    /// The runtime and folder plugins are reloaded from, once
    /// [`Host::watch_plugins`] has been called.
    pub(crate) reload_from: std::sync::OnceLock<(Runtime, PathBuf)>,
}

impl Shared {
    pub(crate) fn phase(&self) -> Phase {
        *self.phase.borrow()
    }
}

/// A started host: controls it and reads its health. Dropping it does not
/// stop it; call [`Host::shutdown`].
#[derive(Clone)]
pub struct Host {
    shared: Arc<Shared>,
    tasks: Arc<tokio::sync::Mutex<JoinSet<()>>>,
    /// The claim loop, awaited at shutdown so that a claim in flight is
    /// handed to a unit task (which releases it) rather than dropped.
    claim_loop: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Host {
    /// Registers this process as a worker and starts the claim loop and the
    /// maintenance tasks. Fails only if the worker row cannot be written.
    pub async fn start(mut parts: HostParts) -> anyhow::Result<Host> {
        let plans = TaskPlans::new(&parts.config, &parts.registry)?;
        parts.worker.task_types = parts.registry.task_types().map(String::from).collect();
        parts
            .store
            .register_worker(&parts.worker)
            .await
            .map_err(|err| anyhow::anyhow!("cannot register this process as a worker: {err}"))?;
        let guests = guests::GuestThreads::new(parts.config.slots)?;
        let group_commit = group_commit::GroupCommit::start(parts.store.clone());
        let flow = parts.outbound.flow();
        if let Some(flow) = &flow {
            flow.share_budgets(&parts.store);
        }
        let shared = Arc::new(Shared {
            guests,
            slots: Arc::new(Semaphore::new(parts.config.slots as usize)),
            suspects: suspects::Suspects::new(parts.config.suspect_slots()),
            health: Arc::new(Health::new(parts.registry.plugins().len())),
            config: parts.config,
            store: parts.store,
            flow,
            outbound: parts.outbound,
            worker: parts.worker,
            plans: PlanSet::new(plans),
            running: Arc::new(Running::default()),
            turnover: pool::Turnover::default(),
            finishing: pool::Finishing::default(),
            group_commit,
            wake: Notify::new(),
            phase: watch::channel(Phase::Running).0,
            paused: watch::channel(false).0,
            reloading: tokio::sync::Mutex::new(()),
            reload_from: std::sync::OnceLock::new(),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(heartbeat::run(shared.clone()));
        tasks.spawn(reaper::run(shared.clone()));
        tasks.spawn(pool::listen_for_work(shared.clone()));
        tasks.spawn(unserved::run(shared.clone()));
        let claim_loop = tokio::spawn(pool::run(shared.clone()));
        tracing::info!(
            worker = %shared.worker.id,
            slots = shared.config.slots,
            task_types = ?shared.plans.current().task_types().collect::<Vec<_>>(),
            "host started"
        );
        Ok(Host {
            shared,
            tasks: Arc::new(tokio::sync::Mutex::new(tasks)),
            claim_loop: Arc::new(tokio::sync::Mutex::new(Some(claim_loop))),
        })
    }

    pub fn health(&self) -> Arc<Health> {
        self.shared.health.clone()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.shared.store.clone()
    }

    pub fn phase(&self) -> Phase {
        self.shared.phase()
    }

    /// The circuit breaker of every LLM provider.
    pub fn breakers(&self) -> Vec<BreakerReport> {
        self.shared
            .flow
            .as_ref()
            .map(|flow| flow.breakers())
            .unwrap_or_default()
    }

    /// Units being processed right now.
    pub fn units_in_flight(&self) -> usize {
        self.shared.running.len()
    }

    /// Follows the number of units in flight; the receiver is told when it
    /// reaches zero or leaves zero (the host going idle or busy), not at
    /// every unit.
    pub fn watch_units_in_flight(&self) -> watch::Receiver<usize> {
        self.shared.running.watch()
    }

    /// Reloads the plugins in `dir` now (see [`reload`]): changed files are
    /// compiled, checked and swapped in; refused files change nothing.
    /// `runtime` must be the one the running plugins were loaded with.
    pub async fn reload_plugins(&self, runtime: &Runtime, dir: &Path) -> ReloadSummary {
        reload::reload(&self.shared, runtime, dir).await
    }

    /// The plugins in force now (after any reload).
    pub fn plugins(&self) -> Vec<Arc<crate::runtime::Plugin>> {
        self.shared.plans.current().plugins().to_vec()
    }

    /// Reloads the plugins folder now, as `SIGHUP` does. `None` when this
    /// host does not watch a folder ([`Host::watch_plugins`] was not called).
    pub async fn reload_now(&self) -> Option<ReloadSummary> {
        let (runtime, dir) = self.shared.reload_from.get()?;
        Some(reload::reload(&self.shared, runtime, dir).await)
    }

    /// Reloads the plugins in `dir` whenever its `.wasm` files change, and on
    /// `SIGHUP` or [`Host::reload_now`], until shutdown.
    pub async fn watch_plugins(&self, runtime: Runtime, dir: PathBuf) {
        let _ = self.shared.reload_from.set((runtime.clone(), dir.clone()));
        self.tasks
            .lock()
            .await
            .spawn(reload::watch(self.shared.clone(), runtime, dir));
    }

    /// Stops (or resumes) the claim loop without stopping anything else, so
    /// `/healthz` can be seen to fail. Running units are not affected.
    pub fn pause_claim_loop(&self, paused: bool) {
        self.shared.paused.send_replace(paused);
        self.shared.wake.notify_one();
    }

    /// Stops claiming and fetching new batches; running calls may finish.
    pub fn drain(&self) {
        self.advance(Phase::Draining);
    }

    /// Cancels every running call; their units are released without an attempt.
    pub fn cancel_running(&self) {
        self.advance(Phase::Cancelling);
        self.shared.running.cancel_all(unit::SHUTDOWN_REASON, false);
    }

    fn advance(&self, phase: Phase) {
        self.shared.phase.send_if_modified(|current| {
            let advanced = phase > *current;
            if advanced {
                *current = phase;
            }
            advanced
        });
        self.shared.wake.notify_one();
    }

    /// Graceful shutdown: drain, give running units `grace` to finish, cancel
    /// the rest, wait until every unit has been released, then stop the
    /// maintenance tasks. Nothing is left claimed for the reaper.
    pub async fn shutdown(&self, grace: Duration) {
        self.drain();
        // For the dashboard's hosts page; best effort, the drain goes on.
        let worker = &self.shared.worker.id;
        match tokio::time::timeout(DRAIN_MARK_TIMEOUT, self.shared.store.mark_draining(worker))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "could not record that this host is draining")
            }
            Err(_) => tracing::warn!(
                "could not record that this host is draining within {DRAIN_MARK_TIMEOUT:?}"
            ),
        }
        if let Some(claim_loop) = self.claim_loop.lock().await.take() {
            // It stops at its next turn; a claim it is making completes first.
            let _ = claim_loop.await;
        }
        if tokio::time::timeout(grace, self.shared.running.wait_empty())
            .await
            .is_err()
        {
            tracing::warn!(
                units = self.shared.running.len(),
                "grace period over: cancelling running units"
            );
            self.cancel_running();
            // Cancelled calls end at once; their releases are bounded by the lease.
            let bound = self.shared.config.lease * 2;
            if tokio::time::timeout(bound, self.shared.running.wait_empty())
                .await
                .is_err()
            {
                tracing::error!(
                    units = self.shared.running.len(),
                    "units did not wind down; their leases will expire"
                );
            }
        }
        let mut tasks = self.tasks.lock().await;
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        tracing::info!("host stopped");
    }
}
