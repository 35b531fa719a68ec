//! The threads plugin calls run on, apart from the host's own tasks.
//!
//! A spinning guest holds its thread for one epoch tick at a time before it
//! yields. Were guests on the same tokio runtime as the heartbeat, the reaper
//! and the database connections, a pool of spinning guests would delay them:
//! tokio looks at timers and sockets only every so many task polls, and each
//! guest poll is a full epoch tick. So calls run on a runtime of their own,
//! which checks its timers after every poll (a hung import's deadline must not
//! wait for a spinning neighbour either), and the host's runtime stays free.

use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};

/// A dedicated multi-threaded runtime for plugin calls; shut down without
/// blocking when the host is dropped.
pub(crate) struct GuestThreads {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl GuestThreads {
    /// One thread per core, but no more than there are slots.
    pub(crate) fn new(slots: u32) -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let runtime = Builder::new_multi_thread()
            .worker_threads(cores.min(slots as usize).max(1))
            .thread_name("sluice-guest")
            .event_interval(1)
            .enable_all()
            .build()
            .map_err(|err| anyhow::anyhow!("cannot start the plugin call threads: {err}"))?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Runs `call` on the guest threads and waits for it. A panic in the call
    /// (a host bug, never a guest's doing) comes back as an error message.
    pub(crate) async fn run<F, T>(&self, call: F) -> Result<T, String>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.handle
            .spawn(call)
            .await
            .map_err(|err| format!("the call's task failed: {err}"))
    }
}

impl Drop for GuestThreads {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
