//! The open-file limit a host needs. Every slot may hold a socket to an LLM
//! provider or an HTTP endpoint, beside the database connections, the
//! listener, the plugins and the compile cache, so a host with many slots
//! needs more descriptors than a shell's usual soft limit of 1,024. At start
//! `sluice run` raises its soft limit to the hard limit (as Go's runtime
//! does), and refuses to start when the hard limit is below what the slots
//! need, rather than failing calls later with "too many open files".

use anyhow::bail;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::config::Config;

/// Descriptors beside the slots' and the database's: the listener and its
/// clients, plugins, the cache, logs, the runtime's own.
const BESIDE_SLOTS: u64 = 256;

/// The descriptors a host with this configuration may hold at once.
fn needed(config: &Config) -> u64 {
    u64::from(config.slots) + u64::from(config.max_connections) + BESIDE_SLOTS
}

/// Raises the soft open-file limit to the hard limit (the estimate of what
/// the slots need is a floor: idle pooled sockets linger); fails, naming both
/// figures and what to change, when the hard limit is below that estimate.
pub fn ensure(config: &Config) -> anyhow::Result<()> {
    let needed = needed(config);
    let limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum.filter(|&hard| hard < needed) {
        bail!(
            "slots = {} needs up to {needed} open files, but this process may open at most {hard} \
             (its hard limit): lower `slots`, or raise the limit (`ulimit -Hn` in the shell, \
             `LimitNOFILE=` in the systemd unit)",
            config.slots,
        );
    }
    // `None` is unlimited; an unlimited hard limit cannot be the soft one.
    let target = limit.maximum.unwrap_or(needed);
    let Some(soft) = limit.current.filter(|&soft| soft < target) else {
        return Ok(());
    };
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        },
    )
    .map_err(|err| anyhow::anyhow!("cannot raise the open-file limit to {target}: {err}"))?;
    tracing::debug!(from = soft, to = target, "raised the open-file limit");
    Ok(())
}
