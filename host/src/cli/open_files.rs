//! The open-file limit a host needs. Every slot may hold a socket to an LLM
//! provider or an HTTP endpoint, beside the database connections, the
//! listener, the plugins and the compile cache, so a host with many slots
//! needs more descriptors than a shell's usual soft limit of 1,024. At start
//! `sluice run` raises its soft limit as far as it needs, up to the hard
//! limit (as Go's runtime and many servers do), and refuses to start when
//! the hard limit is too low, rather than failing calls later with "too many
//! open files".

use anyhow::bail;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::config::Config;

/// Descriptors beside the slots' and the database's: the listener and its
/// clients, plugins, the cache, logs, the runtime's own.
const BESIDE_SLOTS: u64 = 256;

/// The descriptors a host with this configuration may hold at once.
pub fn needed(config: &Config) -> u64 {
    u64::from(config.slots) + u64::from(config.max_connections) + BESIDE_SLOTS
}

/// Raises the soft open-file limit to what `config` needs when it is lower;
/// fails, naming both figures and what to change, when the hard limit is
/// lower still.
pub fn ensure(config: &Config) -> anyhow::Result<()> {
    let needed = needed(config);
    let limit = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    if limit.current.is_none_or(|soft| soft >= needed) {
        return Ok(());
    }
    if limit.maximum.is_some_and(|hard| hard < needed) {
        bail!(
            "slots = {} needs up to {needed} open files, but this process may open at most {} \
             (its hard limit): lower `slots`, or raise the limit (`ulimit -Hn` in the shell, \
             `LimitNOFILE=` in the systemd unit)",
            config.slots,
            limit.maximum.unwrap_or_default(),
        );
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(needed),
            maximum: limit.maximum,
        },
    )
    .map_err(|err| anyhow::anyhow!("cannot raise the open-file limit to {needed}: {err}"))?;
    tracing::info!(
        from = limit.current,
        to = needed,
        "raised the open-file limit for the slots"
    );
    Ok(())
}
