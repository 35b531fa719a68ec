//! The signals that stop the host: SIGTERM (what orchestrators send) and
//! SIGINT (Ctrl-C). The first starts a graceful shutdown; the second means
//! "now". They are watched from the moment the process starts, so one that
//! arrives while it is still starting up is a request to stop like any
//! other, not the kernel's default of ending the process on the spot.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGTERM and SIGINT, watched since [`Signals::watch`].
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Starts watching both signals.
    pub fn watch() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves at the next SIGTERM or SIGINT (including one that arrived
    /// since the watch began) and says which.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
