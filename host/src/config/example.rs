//! The commented example configuration (`sluice config --example`, checked in
//! as `deploy/sluice.toml`), generated from one table so it cannot drift.
//!
//! [`KEYS`] lists every key and section with the words an operator reads; the
//! values shown come from [`Config::default`] itself, so a changed default
//! changes the example. The tests check the other direction: every field of
//! every configuration struct has a row here, every row is a real key in the
//! right section, and the checked-in file is what this module prints.

use std::fmt::Write as _;

use super::{Config, TaskSection};
use crate::outbound::ProviderConfig;

/// How a row appears in the example.
enum Show {
    /// A `[section]` header, written as is.
    Section,
    /// A `[section]` header that exists only when the operator writes it (a
    /// task type, a provider): commented out, like every key under it.
    SampleSection,
    /// The key, commented out, with its built-in default.
    Default,
    /// The key set to this value (TOML), where a deployment differs from the
    /// built-in default (paths).
    Set(&'static str),
    /// The key, commented out, with this sample value (TOML): keys without a
    /// default, or whose default is empty.
    Sample(&'static str),
}

/// One row of the reference: a key's dotted path (sample sections use the
/// names `summary`, `webhook` and `openai`), what it means, how it is shown.
struct Key {
    path: &'static str,
    doc: &'static str,
    show: Show,
}

const fn key(path: &'static str, doc: &'static str, show: Show) -> Key {
    Key { path, doc, show }
}

/// Every key, in the order of the example file. Each doc is the operator's
/// reference; the field docs in the structs are the programmer's.
const KEYS: &[Key] = &[
    key(
        "database_url",
        "Where the queue lives: `sqlite://PATH` (the file is created if missing) or \
         `postgres://USER@HOST/DB` (several hosts may share one Postgres). Put a password in \
         SLUICE_DATABASE_URL rather than in this file.",
        Show::Set("\"sqlite:///var/lib/sluice/sluice.db\""),
    ),
    key(
        "require_migrated",
        "Refuse to start while a database migration is pending, instead of applying it \
         (for databases migrated by a separate `sluice migrate` step).",
        Show::Default,
    ),
    key(
        "plugins_dir",
        "The folder of `.wasm` task plugins; every one is loaded at start.",
        Show::Set("\"/usr/local/lib/sluice/plugins\""),
    ),
    key(
        "cache_dir",
        "Where compiled plugins are cached between starts. Unset: ~/.cache/sluice/compiled.",
        Show::Set("\"/var/cache/sluice\""),
    ),
    key(
        "slots",
        "Work units processed at once by this process. Each may hold an open socket: at \
         start the host raises its soft open-file limit to its hard limit, and refuses to \
         start when the hard limit is below `slots + max_connections + 256`.",
        Show::Default,
    ),
    key(
        "suspect_share",
        "The share of `slots` that suspect units (whose last attempt timed out or trapped) \
         may hold at once, at least one slot: poison being retried never crowds out healthy \
         work.",
        Show::Default,
    ),
    key(
        "lease",
        "How long this process's claims live without a heartbeat; a host that dies loses its \
         units to the others after this long.",
        Show::Default,
    ),
    key(
        "heartbeat_interval",
        "How often the lease is renewed; at most half the lease.",
        Show::Default,
    ),
    key(
        "reaper_interval",
        "How often expired leases of other processes are reaped and old rows deleted.",
        Show::Default,
    ),
    key(
        "poll_interval",
        "The longest an idle claim loop sleeps before looking for work again (Postgres wakes \
         it at once on new work).",
        Show::Default,
    ),
    key(
        "fair_share",
        "How long one unit may keep its slot while it has more ready items; then it is \
         released so other units get their turn.",
        Show::Default,
    ),
    key(
        "shutdown_grace",
        "How long running units may finish after SIGTERM before they are cancelled and \
         released. Keep the service manager's stop timeout longer (TimeoutStopSec in \
         sluice.service).",
        Show::Default,
    ),
    key(
        "retain_done",
        "How long done items are kept after they finish (their outputs and all dead letters \
         stay).",
        Show::Default,
    ),
    key(
        "retain_outputs",
        "How long outputs are kept; the reaper deletes older ones a batch at a time. Unset: \
         kept until `sluice outputs purge` deletes them.",
        Show::Sample("\"90days\""),
    ),
    key(
        "retain_idle",
        "How long the rows of stopped hosts and of units with nothing pending are kept.",
        Show::Default,
    ),
    key(
        "max_payload_bytes",
        "The largest item payload `enqueue` accepts, in bytes.",
        Show::Default,
    ),
    key(
        "max_connections",
        "Database connections of this process for fetches, commits and reads; at least 2. Calls hold none while they run, so a few dozen serve hundreds of slots (on Postgres the claim loop and the heartbeat have a connection each besides these, and releases, failures and reaps share a quarter as many; on SQLite every write goes through one writer).",
        Show::Default,
    ),
    key(
        "listen",
        "Where /healthz, /readyz and /metrics are served; \"off\" disables the listener.",
        Show::Default,
    ),
    key(
        "stall_after",
        "/healthz fails when the claim loop or the heartbeat has not ticked for this long; \
         more than `lease` + 5s.",
        Show::Default,
    ),
    key(
        "defaults",
        "Settings of every task type that its own [tasks.<type>] section does not override. \
         Durations are written like 500ms, 30s, 10m or 1day.",
        Show::Section,
    ),
    key(
        "defaults.timeout",
        "The deadline of one plugin call (a batch or an item), host calls included.",
        Show::Default,
    ),
    key(
        "defaults.max_attempts",
        "Attempts before an item is dead-lettered; the first try counts.",
        Show::Default,
    ),
    key(
        "defaults.backoff_base",
        "The wait after a first failure; it doubles with each attempt, with jitter.",
        Show::Default,
    ),
    key(
        "defaults.backoff_max",
        "The longest wait between two attempts.",
        Show::Default,
    ),
    key(
        "defaults.batch_max_items",
        "Batch plugins: the most items in one call (item plugins get one).",
        Show::Default,
    ),
    key(
        "defaults.batch_max_tokens",
        "Batch plugins: the most `tokens` in one call; a call always gets at least one item.",
        Show::Default,
    ),
    key(
        "defaults.gate_min_tokens",
        "Hold a unit back until this many tokens are pending, or until `gate_max_wait` \
         passed. Unset: no gate.",
        Show::Sample("2000"),
    ),
    key(
        "defaults.gate_max_wait",
        "Hold a unit back until its oldest item has waited this long, or until \
         `gate_min_tokens` are pending. Without it, a unit short of `gate_min_tokens` waits \
         for more items indefinitely.",
        Show::Sample("\"30s\""),
    ),
    key(
        "defaults.memory_mib",
        "The linear memory one call may use, in MiB.",
        Show::Default,
    ),
    key(
        "tasks.summary",
        "One task type's own settings, here for the task type `summary`. A section for a task \
         type no loaded plugin handles stops the host: it is almost always a typo.",
        Show::SampleSection,
    ),
    key(
        "tasks.summary.timeout",
        "Any key of [defaults] may be set here for this task type alone.",
        Show::Sample("\"2m\""),
    ),
    key(
        "tasks.summary.may_enqueue",
        "The task types this one's follow-up items may be for; [\"*\"] allows any, [] none. \
         Unset: the task types of its own plugin.",
        Show::Sample("[\"webhook\"]"),
    ),
    key(
        "tasks.summary.config",
        "Values the plugin reads with the `config` import; the keys are the plugin's own. \
         `sluice config` prints values whose names look secret as ***.",
        Show::SampleSection,
    ),
    key(
        "tasks.summary.config.max_tokens",
        "A value the `summary` plugin reads.",
        Show::Sample("\"256\""),
    ),
    key(
        "tasks.summary.llm",
        "The LLM this task type's plugin may use. Without a provider, every `llm` call is \
         denied.",
        Show::SampleSection,
    ),
    key(
        "tasks.summary.llm.provider",
        "A provider name from [llm.providers].",
        Show::Sample("\"openai\""),
    ),
    key(
        "tasks.summary.llm.model",
        "The model used when the plugin names none; required with `provider`.",
        Show::Sample("\"gpt-4o-mini\""),
    ),
    key(
        "tasks.summary.llm.fallback_model",
        "Tried once after a provider error, a rate limit or a connection failure, if time \
         remains.",
        Show::Sample("\"gpt-4o\""),
    ),
    key(
        "tasks.summary.llm.allowed_models",
        "Other models the plugin may ask for by name.",
        Show::Sample("[\"gpt-4o\"]"),
    ),
    key(
        "tasks.webhook.http",
        "Where this task type's plugin may send HTTP requests, here for the task type \
         `webhook`. Without this section every request is denied.",
        Show::SampleSection,
    ),
    key(
        "tasks.webhook.http.allow_hosts",
        "Hosts that may be reached: `host` (ports 80 and 443), `host:8443`, `host:*` (any \
         port), `*.example.org` (any subdomain), IP addresses (`[::1]:8080`).",
        Show::Sample("[\"hooks.example.com\", \"*.example.org\"]"),
    ),
    key(
        "tasks.webhook.http.allow_private",
        "Loopback, private, link-local and metadata addresses are refused, whether written \
         or resolved, unless listed here as IPs or CIDR ranges.",
        Show::Sample("[\"10.0.0.0/8\"]"),
    ),
    key(
        "tasks.webhook.http.max_response_bytes",
        "The largest response body accepted, in bytes.",
        Show::Default,
    ),
    key(
        "tasks.webhook.http.timeout",
        "The longest one request may take, redirects included; the call's deadline may cut \
         it shorter.",
        Show::Default,
    ),
    key(
        "tasks.webhook.http.max_redirects",
        "Redirects followed per request, each checked against `allow_hosts` and the address \
         rules again; 0 returns 3xx answers as they are.",
        Show::Default,
    ),
    key(
        "llm",
        "LLM requests of every task type: limits, timeouts, retries and providers.",
        Show::Section,
    ),
    key(
        "llm.max_response_bytes",
        "The largest reply body accepted, in bytes.",
        Show::Default,
    ),
    key(
        "llm.timeouts",
        "The time budgets of one LLM request, each clamped to what is left of the call's \
         deadline.",
        Show::Section,
    ),
    key(
        "llm.timeouts.connect",
        "Establishing the connection (TCP and TLS).",
        Show::Default,
    ),
    key(
        "llm.timeouts.first_byte",
        "Streamed requests: until the response headers arrive.",
        Show::Default,
    ),
    key(
        "llm.timeouts.idle",
        "Between two chunks of the body: a stream that stops is cut.",
        Show::Default,
    ),
    key(
        "llm.timeouts.total",
        "Non-streamed requests: the whole request.",
        Show::Default,
    ),
    key(
        "llm.retry",
        "Retries of connection errors, 429 (honouring Retry-After) and 5xx answers, never \
         past the call's deadline.",
        Show::Section,
    ),
    key(
        "llm.retry.max_retries",
        "Retries after the first attempt; 0 disables them.",
        Show::Default,
    ),
    key(
        "llm.retry.base_backoff",
        "The first backoff; it doubles with every retry, with jitter.",
        Show::Default,
    ),
    key(
        "llm.retry.max_backoff",
        "The longest backoff between two attempts.",
        Show::Default,
    ),
    key(
        "llm.providers.openai",
        "One LLM endpoint, here named `openai`, that [tasks.<type>.llm] sections refer to.",
        Show::SampleSection,
    ),
    key(
        "llm.providers.openai.kind",
        "\"openai\" for OpenAI-compatible chat completions (OpenAI, Ollama, vLLM, llama.cpp, \
         OpenRouter, Gemini's endpoint) or \"anthropic\" for the Messages API. Required.",
        Show::Sample("\"openai\""),
    ),
    key(
        "llm.providers.openai.base_url",
        "The API root, version included. Unset: the vendor's.",
        Show::Sample("\"https://api.openai.com/v1\""),
    ),
    key(
        "llm.providers.openai.api_key_env",
        "The environment variable holding the API key; it never reaches plugins or logs. \
         Unset: no key (a local Ollama).",
        Show::Sample("\"OPENAI_API_KEY\""),
    ),
    key(
        "llm.providers.openai.stream",
        "Stream replies, so a long generation is bounded by the idle timeout between chunks \
         rather than by `total`.",
        Show::Sample("true"),
    ),
    key(
        "llm.providers.openai.timeouts",
        "Any key of [llm.timeouts], for this provider alone.",
        Show::SampleSection,
    ),
    key(
        "llm.providers.openai.timeouts.first_byte",
        "A slow local model may need longer before its first byte.",
        Show::Sample("\"2m\""),
    ),
    key(
        "llm.providers.openai.budget",
        "How much this host may send the provider. A request over budget waits inside the \
         `llm` import, never past the call's deadline; a Retry-After from the provider, or \
         rate-limit headers saying a limit is used up, hold every request to it until then. \
         Unset keys: no limit.",
        Show::SampleSection,
    ),
    key(
        "llm.providers.openai.budget.max_concurrent",
        "Requests open at once.",
        Show::Sample("16"),
    ),
    key(
        "llm.providers.openai.budget.requests_per_minute",
        "Requests sent per minute, paced evenly (at most one second's worth at once).",
        Show::Sample("500"),
    ),
    key(
        "llm.providers.openai.budget.tokens_per_minute",
        "Input plus output tokens per minute: estimated before each request (characters / 4 \
         plus max-tokens) and corrected with the usage the provider reports.",
        Show::Sample("200000"),
    ),
    key(
        "llm.providers.openai.budget.shared",
        "Share the requests and tokens per minute with every host on the same database, so \
         that ten hosts do not each spend the whole budget (one short write per request). \
         `max_concurrent` and Retry-After stay per host.",
        Show::Default,
    ),
    key(
        "llm.providers.openai.models.gpt-4o-mini.budget",
        "A budget for one model of the provider (here `gpt-4o-mini`; quote a name with dots: \
         `models.\"gpt-4.1\".budget`), with the keys of the provider's budget. It is spent \
         in addition to the provider's: a request to the model waits for both.",
        Show::SampleSection,
    ),
    key(
        "llm.providers.openai.models.gpt-4o-mini.budget.max_concurrent",
        "As for the provider, for this model alone.",
        Show::Sample("4"),
    ),
    key(
        "llm.providers.openai.models.gpt-4o-mini.budget.requests_per_minute",
        "As for the provider, for this model alone.",
        Show::Sample("100"),
    ),
    key(
        "llm.providers.openai.models.gpt-4o-mini.budget.tokens_per_minute",
        "As for the provider, for this model alone.",
        Show::Sample("50000"),
    ),
    key(
        "llm.providers.openai.breaker",
        "The provider's circuit breaker: after repeated failures its task types are not \
         claimed (others keep flowing) and running calls get an `unavailable` error that \
         counts no attempt, until a probe after the cool-down succeeds.",
        Show::SampleSection,
    ),
    key(
        "llm.providers.openai.breaker.failures",
        "Failed requests in a row (connection errors, timeouts, 5xx, 429) that open the \
         breaker; 0 turns it off.",
        Show::Default,
    ),
    key(
        "llm.providers.openai.breaker.cooldown",
        "How long the breaker stays open before probes are let through.",
        Show::Default,
    ),
    key(
        "llm.providers.openai.breaker.probes",
        "Requests let through at once while half-open; one that succeeds closes the \
         breaker, one that fails opens it again.",
        Show::Default,
    ),
    key(
        "limits",
        "Bounds on the work a guest can make the host do on its own CPU and memory. Every \
         bundled plugin stays well within the defaults.",
        Show::Section,
    ),
    key(
        "limits.max_output_bytes",
        "The largest outcome (output JSON plus follow-up items, 64 bytes more each), in \
         bytes; beyond it the call is `invalid-output`.",
        Show::Default,
    ),
    key(
        "limits.max_output_depth",
        "The deepest nesting of an output or follow-up payload; at most 100.",
        Show::Default,
    ),
    key(
        "limits.max_enqueue_items",
        "The most follow-up items one outcome may enqueue.",
        Show::Default,
    ),
    key(
        "limits.log_bytes_per_call",
        "Bytes of guest log lines one call may write (64 bytes more per line) before the rest \
         are suppressed.",
        Show::Default,
    ),
    key(
        "limits.log_bytes_per_second",
        "Bytes of guest log lines per second for all the calls of this process.",
        Show::Default,
    ),
    key(
        "limits.schema_max_bytes",
        "The largest JSON schema an `llm` request may carry, in bytes.",
        Show::Default,
    ),
    key(
        "limits.schema_max_patterns",
        "The most `pattern`s and `patternProperties` keys in one schema.",
        Show::Default,
    ),
    key(
        "limits.schema_max_pattern_bytes",
        "The most bytes of all the patterns of one schema together.",
        Show::Default,
    ),
    key(
        "limits.schema_regex_bytes",
        "The largest compiled form of one pattern, in bytes: the bound on regex complexity.",
        Show::Default,
    ),
    key(
        "limits.schema_timeout",
        "The longest compiling a schema (or checking a reply against it) may take.",
        Show::Default,
    ),
    key(
        "limits.schema_cache_entries",
        "Compiled schemas kept per plugin.",
        Show::Default,
    ),
    key(
        "api",
        "The HTTP API under /v1 on the listener (`listen`): enqueue, items, units, status, dead \
         letters and plugins, described by /v1/openapi.json. Without tokens it serves a \
         loopback `listen` address only, to every local process.",
        Show::Section,
    ),
    key(
        "api.enabled",
        "Serve /v1; false leaves the listener to /healthz, /readyz and /metrics.",
        Show::Default,
    ),
    key(
        "api.max_body_bytes",
        "The largest request body, in bytes; larger ones get 413.",
        Show::Default,
    ),
    key(
        "api.tokens.producer",
        "One bearer token, here named `producer` (the name appears in logs).",
        Show::SampleSection,
    ),
    key(
        "api.tokens.producer.scope",
        "\"enqueue\" (enqueue items), \"read\" (items, units, status, dead letters, plugins) \
         or \"admin\" (everything, including retrying and purging dead letters and \
         cancelling a unit's items).",
        Show::Sample("\"enqueue\""),
    ),
    key(
        "api.tokens.producer.token_env",
        "The environment variable holding the token; the host keeps only its SHA-256.",
        Show::Sample("\"SLUICE_PRODUCER_TOKEN\""),
    ),
    key(
        "api.tokens.ops",
        "Another token, here named `ops`, given by its hash instead.",
        Show::SampleSection,
    ),
    key(
        "api.tokens.ops.scope",
        "As above.",
        Show::Sample("\"admin\""),
    ),
    key(
        "api.tokens.ops.sha256",
        "The token's SHA-256 in hex (`printf %s TOKEN | sha256sum`): give this or token_env, \
         not both.",
        Show::Sample("\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\""),
    ),
];

/// The example configuration, as checked in at `deploy/sluice.toml`.
pub fn example() -> String {
    let defaults = default_values();
    let mut out = String::from(HEADER);
    for row in KEYS {
        out.push('\n');
        let default = lookup(&defaults, row.path).map(ToString::to_string);
        let name = row.path.rsplit('.').next().unwrap_or(row.path);
        let line = match &row.show {
            Show::Section => format!("[{}]", row.path),
            Show::SampleSection => format!("#[{}]", row.path),
            Show::Default => format!("#{name} = {}", default.as_deref().unwrap_or("")),
            Show::Set(value) => format!("{name} = {value}"),
            Show::Sample(value) => format!("#{name} = {value}"),
        };
        let mut doc = row.doc.to_string();
        if let (Show::Set(shown) | Show::Sample(shown), Some(default)) = (&row.show, &default)
            && shown != default
        {
            let _ = write!(doc, " Default: {default}.");
        }
        wrap_comment(&mut out, &doc);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

const HEADER: &str = "\
# sluice.toml: the configuration of `sluice run` and of every other verb.
#
# Generated by `sluice config --example` from the configuration's own
# definitions. A commented-out key (`#key = value`) shows its built-in default,
# or a sample where there is none; uncomment it to change it (with its
# `#[section]` header, for a sample section). Environment variables override
# this file: SLUICE_<KEY>, with `__` between nested keys (SLUICE_SLOTS=4,
# SLUICE_DEFAULTS__TIMEOUT=30s).
";

/// The built-in defaults as TOML, with one default `[tasks.<type>]` section
/// for each sample task type and a provider for the sample provider, so the
/// defaults inside those sections are read from the code too.
fn default_values() -> toml::Value {
    let mut config = Config::default();
    for task_type in ["summary", "webhook"] {
        config
            .tasks
            .insert(task_type.into(), TaskSection::default());
    }
    let provider: ProviderConfig = toml::from_str("kind = \"openai\"")
        .expect("a provider needs only its kind; the rest has defaults");
    config.llm.providers.insert("openai".into(), provider);
    toml::Value::try_from(config).expect("the configuration serializes to TOML")
}

/// The value at a dotted path, if the defaults have one (a section is a
/// table, so it has one too, but sections print no value).
fn lookup<'v>(value: &'v toml::Value, path: &str) -> Option<&'v toml::Value> {
    path.split('.')
        .try_fold(value, |value, part| value.get(part))
}

/// Appends `text` as `# ` comment lines of at most 80 columns.
fn wrap_comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.len() + 1 + word.len() > 80 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

#[cfg(test)]
mod tests;
