//! One typed configuration for every verb, from `sluice.toml` and `SLUICE_*`
//! environment variables, validated before anything starts.
//!
//! Sources, later ones winning: built-in defaults, the file (`--config FILE`,
//! or `./sluice.toml` when it exists), then environment variables. Nested keys
//! use `__` in variable names: `SLUICE_SLOTS=4`, `SLUICE_DEFAULTS__TIMEOUT=30s`,
//! `SLUICE_TASKS__SUMMARY__MAX_ATTEMPTS=3`. Only variables whose first segment
//! names a top-level key are read, so `SLUICE_LOG` and friends stay the CLI's.
//!
//! An unknown key in the file, a value of the wrong type or out of range, and a
//! missing plugins folder each stop the host with an error naming the key.
//! Durations are written like `500ms`, `30s` or `10m`. Relative paths in the
//! file start at the file's folder.

mod api;
mod example;
mod limits;
mod paths;
mod redact;
mod task;
mod wording;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::outbound::{LlmConfig, Network, TaskOutbound};
use crate::runtime::EnqueuePolicy;
use crate::runtime::limits::CallLimits;

pub use api::{ApiConfig, ApiToken, Scope};
pub use example::example;
pub use limits::Limits;
pub use paths::sqlite_file;
pub use redact::redact_url;
pub use task::{TaskSection, TaskSettings};

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "sluice.toml";

/// The whole configuration. Field docs are the reference the README points to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `sqlite://PATH` (created if missing) or `postgres://USER@HOST/DB`.
    pub database_url: String,
    /// Refuse to start while a database migration is pending, instead of applying it.
    pub require_migrated: bool,
    /// The folder of `.wasm` task plugins.
    pub plugins_dir: PathBuf,
    /// Where compiled plugins are cached; unset means `~/.cache/sluice/compiled`.
    pub cache_dir: Option<PathBuf>,
    /// Units processed at once by this process. `sluice run` needs an
    /// open-file hard limit that fits them (`cli::open_files`).
    pub slots: u32,
    /// The share of `slots` that suspect units (whose last attempt timed out
    /// or trapped) may hold at once; always at least one slot.
    pub suspect_share: f64,
    /// How long a claim lives without a heartbeat.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often this process extends its leases; must be well under `lease`.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How often this process expires other processes' dead leases.
    #[serde(with = "humantime_serde")]
    pub reaper_interval: Duration,
    /// The longest an idle claim loop sleeps before looking for work again.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long one unit may keep its slot while it still has ready items;
    /// after that it is released so other units get their turn.
    #[serde(with = "humantime_serde")]
    pub fair_share: Duration,
    /// How long running units may finish after SIGTERM before they are cancelled.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How long done items are kept after they finish; the reaper deletes
    /// older ones (their outputs stay). Dead letters are never deleted by it.
    #[serde(with = "humantime_serde")]
    pub retain_done: Duration,
    /// How long the rows of hosts that stopped, and of units with nothing
    /// pending, are kept before the reaper deletes them.
    #[serde(with = "humantime_serde")]
    pub retain_idle: Duration,
    /// How long outputs are kept; the reaper deletes older ones. Unset (the
    /// default) keeps them forever; `sluice outputs purge` deletes on demand.
    #[serde(
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub retain_outputs: Option<Duration>,
    /// Largest payload `enqueue` accepts, in bytes.
    pub max_payload_bytes: usize,
    /// Database connections per process for claims, fetches and commits
    /// (on Postgres the heartbeat has one of its own). Calls hold none while
    /// they run.
    pub max_connections: u32,
    /// Where `/healthz`, `/readyz` and `/metrics` are served; `"off"` disables it.
    pub listen: String,
    /// `/healthz` fails when the claim loop or the heartbeat has not ticked for this long.
    #[serde(with = "humantime_serde")]
    pub stall_after: Duration,
    /// Settings for every task type without its own value in `[tasks.<type>]`.
    pub defaults: TaskSettings,
    /// Per-task-type overrides, keyed by task type.
    pub tasks: BTreeMap<String, TaskSection>,
    /// LLM providers, timeouts and retries (`[llm]`); tasks pick a provider in
    /// `[tasks.<type>.llm]`.
    pub llm: LlmConfig,
    /// Bounds on the work a guest can make the host do (`[limits]`).
    pub limits: Limits,
    /// The HTTP API under `/v1` and its tokens (`[api]`).
    pub api: ApiConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://sluice.db".into(),
            require_migrated: false,
            plugins_dir: "plugins".into(),
            cache_dir: None,
            slots: 8,
            suspect_share: 0.25,
            lease: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            reaper_interval: Duration::from_secs(10),
            poll_interval: Duration::from_secs(2),
            fair_share: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            retain_done: Duration::from_secs(24 * 60 * 60),
            retain_idle: Duration::from_secs(60 * 60),
            retain_outputs: None,
            max_payload_bytes: crate::store::DEFAULT_MAX_PAYLOAD_BYTES,
            max_connections: 16,
            listen: "127.0.0.1:9464".into(),
            stall_after: Duration::from_secs(60),
            defaults: TaskSettings::default(),
            tasks: BTreeMap::new(),
            llm: LlmConfig::default(),
            limits: Limits::default(),
            api: ApiConfig::default(),
        }
    }
}

/// A configuration that cannot be used, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration file {0} does not exist; pass an existing file to --config")]
    MissingFile(PathBuf),
    #[error("invalid configuration: `{key}`: {message}")]
    Invalid { key: String, message: String },
    /// A file that cannot be read as a configuration at all.
    #[error("{0}")]
    Unreadable(String),
}

impl ConfigError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Top-level keys, for picking this program's environment variables out of
/// the `SLUICE_` namespace.
const TOP_LEVEL_KEYS: &[&str] = &[
    "database_url",
    "require_migrated",
    "plugins_dir",
    "cache_dir",
    "slots",
    "suspect_share",
    "lease",
    "heartbeat_interval",
    "reaper_interval",
    "poll_interval",
    "fair_share",
    "shutdown_grace",
    "retain_done",
    "retain_idle",
    "retain_outputs",
    "max_payload_bytes",
    "max_connections",
    "listen",
    "stall_after",
    "defaults",
    "tasks",
    "llm",
    "limits",
    "api",
];

impl Config {
    /// How many slots suspect units may hold at once: `suspect_share` of
    /// them, rounded down, but at least one.
    pub fn suspect_slots(&self) -> u32 {
        ((f64::from(self.slots) * self.suspect_share) as u32).max(1)
    }

    /// Reads `file` (or `./sluice.toml` when `None` and it exists) and the
    /// environment, then checks every value.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.is_file() => {
                return Err(ConfigError::MissingFile(path.to_path_buf()));
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_FILE));
            }
            None => {}
        }
        let env = Env::prefixed("SLUICE_").split("__").filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            TOP_LEVEL_KEYS
                .iter()
                .any(|known| known.eq_ignore_ascii_case(top))
        });
        let figment = figment.merge(env);
        task::refuse_empty_llm(&figment)?;
        let mut config: Config = figment.extract().map_err(wording::describe)?;
        paths::resolve_against_file(&mut config, &figment);
        config.validate()?;
        Ok(config)
    }

    /// Range and consistency checks serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres:")
            || self.database_url.starts_with("postgresql:"))
        {
            return Err(ConfigError::invalid(
                "database_url",
                format!(
                    "`{}` is not supported: use sqlite://PATH or postgres://USER@HOST/DB",
                    redact_url(&self.database_url)
                ),
            ));
        }
        if !(1..=4096).contains(&self.slots) {
            return Err(ConfigError::invalid(
                "slots",
                format!("must be between 1 and 4096, got {}", self.slots),
            ));
        }
        if !(self.suspect_share > 0.0 && self.suspect_share <= 1.0) {
            return Err(ConfigError::invalid(
                "suspect_share",
                format!(
                    "must be more than 0 and at most 1 (a share of `slots`), got {}",
                    self.suspect_share
                ),
            ));
        }
        for (key, value) in [
            ("lease", self.lease),
            ("heartbeat_interval", self.heartbeat_interval),
            ("reaper_interval", self.reaper_interval),
            ("poll_interval", self.poll_interval),
            ("fair_share", self.fair_share),
            ("shutdown_grace", self.shutdown_grace),
            ("stall_after", self.stall_after),
        ] {
            at_most(key, value, MAX_INTERVAL)?;
        }
        at_most("retain_done", self.retain_done, MAX_RETENTION)?;
        at_most("retain_idle", self.retain_idle, MAX_RETENTION)?;
        if let Some(retain_outputs) = self.retain_outputs {
            at_most("retain_outputs", retain_outputs, MAX_RETENTION)?;
        }
        at_least("lease", self.lease, Duration::from_secs(1))?;
        at_least(
            "heartbeat_interval",
            self.heartbeat_interval,
            Duration::from_millis(50),
        )?;
        if self.heartbeat_interval * 2 > self.lease {
            return Err(ConfigError::invalid(
                "heartbeat_interval",
                format!(
                    "{} is more than half the lease ({}): a single late heartbeat would lose every claim; lower it or raise `lease`",
                    humantime::format_duration(self.heartbeat_interval),
                    humantime::format_duration(self.lease)
                ),
            ));
        }
        at_least(
            "reaper_interval",
            self.reaper_interval,
            Duration::from_millis(50),
        )?;
        at_least(
            "poll_interval",
            self.poll_interval,
            Duration::from_millis(10),
        )?;
        at_least("fair_share", self.fair_share, Duration::from_millis(1))?;
        // The claim loop may wait up to a lease on a slow database, and
        // heartbeats may be up to two intervals apart while it is away.
        let busiest = (self.lease + Duration::from_secs(5)).max(self.heartbeat_interval * 2);
        if self.stall_after <= busiest {
            return Err(ConfigError::invalid(
                "stall_after",
                format!(
                    "must be more than {}: a slow database would make a healthy host look stalled (raise it or lower `lease`)",
                    humantime::format_duration(busiest)
                ),
            ));
        }
        if self.max_payload_bytes == 0 {
            return Err(ConfigError::invalid(
                "max_payload_bytes",
                "must be positive",
            ));
        }
        if self.max_connections < 2 {
            return Err(ConfigError::invalid(
                "max_connections",
                "must be at least 2: the claim loop and the units' fetches and commits need one each",
            ));
        }
        self.api.validate(self.listen_addr()?)?;
        self.limits.validate()?;
        self.defaults.validate("defaults")?;
        for (task_type, section) in &self.tasks {
            let key = format!("tasks.{task_type}");
            if task_type.is_empty() {
                return Err(ConfigError::invalid(key, "a task type cannot be empty"));
            }
            section.resolve(&self.defaults).validate(&key)?;
            section.validate_may_enqueue(&key)?;
        }
        Ok(())
    }

    /// The address of the health and metrics listener, `None` when `"off"`.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.listen == "off" {
            return Ok(None);
        }
        self.listen.parse().map(Some).map_err(|_| {
            ConfigError::invalid(
                "listen",
                format!(
                    "`{}` is not an address like 127.0.0.1:9464 (or \"off\")",
                    self.listen
                ),
            )
        })
    }

    /// Checks that the plugins folder exists; only the verbs that load plugins ask.
    pub fn check_plugins_dir(&self) -> Result<(), ConfigError> {
        if self.plugins_dir.is_dir() {
            Ok(())
        } else {
            Err(ConfigError::invalid(
                "plugins_dir",
                format!(
                    "{} is not a folder: create it and put .wasm plugins in it, or point `plugins_dir` elsewhere",
                    self.plugins_dir.display()
                ),
            ))
        }
    }

    /// The effective settings for `task_type`.
    pub fn task(&self, task_type: &str) -> TaskSettings {
        match self.tasks.get(task_type) {
            Some(section) => section.resolve(&self.defaults),
            None => self.defaults.clone(),
        }
    }

    /// What one call of `task_type` may use: its own deadline and memory,
    /// `[limits]`, and the task types `may_enqueue` lets it feed.
    pub fn call_limits(&self, task_type: &str) -> CallLimits {
        let settings = self.task(task_type);
        let may_enqueue = self
            .tasks
            .get(task_type)
            .and_then(|section| section.may_enqueue.as_deref());
        CallLimits {
            memory_bytes: settings.memory_mib << 20,
            timeout: settings.timeout,
            max_output_bytes: self.limits.max_output_bytes,
            max_output_depth: self.limits.max_output_depth,
            max_enqueue_items: self.limits.max_enqueue_items,
            may_enqueue: EnqueuePolicy::from_list(may_enqueue),
            log_bytes_per_call: self.limits.log_bytes_per_call,
            ..CallLimits::default()
        }
    }

    /// Every task type's outbound grants, for [`Network::new`].
    pub fn outbound_tasks(&self) -> BTreeMap<String, TaskOutbound> {
        self.tasks
            .iter()
            .map(|(task_type, section)| {
                let grants = TaskOutbound {
                    llm: section.llm.clone(),
                    http: section.http.clone(),
                };
                (task_type.clone(), grants)
            })
            .collect()
    }

    /// The `llm` and `http` imports as configured: providers built, API keys
    /// read from their environment variables, allowlists parsed.
    pub fn network(&self) -> Result<Network, ConfigError> {
        Network::new(&self.llm, &self.outbound_tasks())
            .map(|network| network.with_schema_limits(self.limits.schema()))
            .map_err(|err| ConfigError::Invalid {
                key: err.key,
                message: err.message,
            })
    }

    /// The largest memory limit of any task type, in bytes: what each slot of
    /// the instance pool must be able to hold.
    pub fn max_memory_bytes(&self) -> u64 {
        self.tasks
            .values()
            .map(|section| section.resolve(&self.defaults).memory_mib)
            .chain([self.defaults.memory_mib])
            .max()
            .unwrap_or(self.defaults.memory_mib)
            << 20
    }

    /// This configuration as TOML, for printing: every value of a key that
    /// looks secret, and the credentials in every URL, replaced by `***`.
    pub fn redacted(&self) -> Result<toml::Value, toml::ser::Error> {
        let mut shown = toml::Value::try_from(self)?;
        redact::redact_tree(&mut shown);
        Ok(shown)
    }
}

/// The longest interval, lease or grace period accepted: a day.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// The longest retention: a hundred years, in effect "keep everything",
/// and still a number of milliseconds every database can subtract.
pub(crate) const MAX_RETENTION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn at_most(key: &str, value: Duration, max: Duration) -> Result<(), ConfigError> {
    if value > max {
        return Err(ConfigError::invalid(
            key,
            format!(
                "must be at most {}, got {}",
                humantime::format_duration(max),
                humantime::format_duration(value)
            ),
        ));
    }
    Ok(())
}

fn at_least(key: &str, value: Duration, min: Duration) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::invalid(
            key,
            format!(
                "must be at least {}, got {}",
                humantime::format_duration(min),
                humantime::format_duration(value)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
