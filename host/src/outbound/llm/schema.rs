//! The JSON schemas guests send with `llm` requests: checked against limits,
//! compiled off the guest's thread under a deadline, and cached per plugin.
//!
//! A schema is guest input that costs the host CPU and memory to compile:
//! 400 `pattern`s like `\p{L}{100}[0-9]` once took 7.7 s and 2 GiB, on a guest
//! thread, where neither the epoch interrupt nor the call's timeout could stop
//! it. So a schema is refused, with an `invalid-request` naming the limit,
//! when it is too large, has too many patterns or too many pattern bytes, or a
//! pattern compiles to more than `regex_bytes`; it compiles on a small, shared
//! set of blocking threads, and the call stops waiting for it at the schema
//! timeout or the call's deadline, whichever is first. Checking a reply
//! against the schema runs the same way. Compiled schemas are kept per plugin,
//! keyed by the schema's text, so the usual call (one fixed schema) compiles once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;

use super::gateway;
use crate::imports::CallContext;
use crate::runtime::bindings::llm::Error;

/// Schema compilations and checks running at once in the whole process; the
/// rest wait (within their deadline) for a turn.
const WORKERS: usize = 2;
static TURNS: Semaphore = Semaphore::const_new(WORKERS);

/// Bounds on one schema (`[limits] schema_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaLimits {
    pub max_bytes: usize,
    pub max_patterns: usize,
    pub max_pattern_bytes: usize,
    pub regex_bytes: usize,
    pub timeout: Duration,
    pub cache_entries: usize,
}

impl Default for SchemaLimits {
    fn default() -> Self {
        Self {
            max_bytes: 128 << 10,
            max_patterns: 64,
            max_pattern_bytes: 8 << 10,
            regex_bytes: 256 << 10,
            timeout: Duration::from_secs(2),
            cache_entries: 32,
        }
    }
}

/// A compiled JSON schema, its source and how many patterns it compiled.
pub(super) struct Schema {
    pub(super) value: Value,
    validator: jsonschema::Validator,
    patterns: usize,
}

/// Compiled schemas by plugin, then by schema text, oldest first. Compiled
/// patterns are what costs memory, so a plugin's cache holds at most one
/// schema's worth of them (`max_patterns`) besides at most `cache_entries`
/// schemas.
#[derive(Default)]
struct PluginSchemas {
    by_text: HashMap<Arc<str>, Arc<Schema>>,
    order: VecDeque<Arc<str>>,
    patterns: usize,
}

/// Every plugin's compiled schemas, within the limits.
pub(crate) struct Schemas {
    limits: SchemaLimits,
    plugins: Mutex<HashMap<String, PluginSchemas>>,
}

impl Schemas {
    pub(crate) fn new(limits: SchemaLimits) -> Self {
        Self {
            limits,
            plugins: Mutex::default(),
        }
    }

    /// The compiled form of `text` for the calling plugin.
    pub(super) async fn get(&self, call: &CallContext, text: &str) -> Result<Arc<Schema>, Error> {
        if let Some(schema) = self.cached(&call.plugin, text) {
            return Ok(schema);
        }
        let (value, patterns) = self.admit(text)?;
        let regex_bytes = self.limits.regex_bytes;
        let compiled = self
            .off_thread(call, "compile", move || {
                compile(value, patterns, regex_bytes)
            })
            .await??;
        let schema = Arc::new(compiled);
        self.remember(&call.plugin, text, schema.clone());
        Ok(schema)
    }

    /// Checks that `content` is a JSON document valid against `schema`.
    pub(super) async fn check(
        &self,
        call: &CallContext,
        schema: Arc<Schema>,
        content: String,
    ) -> Result<String, Error> {
        self.off_thread(call, "check the reply against", move || {
            schema.check(&content).map(|()| content)
        })
        .await?
    }

    fn cached(&self, plugin: &str, text: &str) -> Option<Arc<Schema>> {
        let plugins = self.plugins.lock().unwrap_or_else(|p| p.into_inner());
        plugins.get(plugin)?.by_text.get(text).cloned()
    }

    fn remember(&self, plugin: &str, text: &str, schema: Arc<Schema>) {
        let mut plugins = self.plugins.lock().unwrap_or_else(|p| p.into_inner());
        let cache = plugins.entry(plugin.to_owned()).or_default();
        let key: Arc<str> = Arc::from(text);
        let patterns = schema.patterns;
        if cache.by_text.insert(key.clone(), schema).is_some() {
            return; // Another call compiled it meanwhile.
        }
        cache.order.push_back(key);
        cache.patterns += patterns;
        // Evict the oldest, but keep the newest however many patterns it has.
        while cache.order.len() > 1
            && (cache.order.len() > self.limits.cache_entries
                || cache.patterns > self.limits.max_patterns)
        {
            let oldest = cache.order.pop_front().expect("more than one entry");
            if let Some(evicted) = cache.by_text.remove(&oldest) {
                cache.patterns -= evicted.patterns;
            }
        }
    }

    /// Parses `text` and refuses it when it is over a size or pattern limit;
    /// returns it with its number of patterns.
    fn admit(&self, text: &str) -> Result<(Value, usize), Error> {
        let limits = &self.limits;
        if text.len() > limits.max_bytes {
            return Err(refused(format!(
                "it is {} bytes, over the limit of {} ([limits] schema_max_bytes)",
                text.len(),
                limits.max_bytes
            )));
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|err| Error::InvalidRequest(format!("json-schema is not JSON: {err}")))?;
        let (count, bytes) = patterns(&value);
        if count > limits.max_patterns {
            return Err(refused(format!(
                "it has {count} patterns, over the limit of {} ([limits] schema_max_patterns)",
                limits.max_patterns
            )));
        }
        if bytes > limits.max_pattern_bytes {
            return Err(refused(format!(
                "its patterns hold {bytes} bytes, over the limit of {} ([limits] schema_max_pattern_bytes)",
                limits.max_pattern_bytes
            )));
        }
        Ok((value, count))
    }

    /// Runs `work` on a schema thread; the call stops waiting at the schema
    /// timeout or its deadline. Work it stopped waiting for still holds its
    /// turn until it ends, so abandoned work never piles up.
    async fn off_thread<T: Send + 'static>(
        &self,
        call: &CallContext,
        what: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let limit = Instant::now() + self.limits.timeout;
        let until = limit.min(call.deadline);
        let run = async {
            let turn = TURNS
                .acquire()
                .await
                .expect("the semaphore is never closed");
            tokio::task::spawn_blocking(move || {
                let _turn = turn;
                work()
            })
            .await
        };
        match tokio::time::timeout_at(until.into(), run).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_panicked)) => Err(Error::InvalidRequest(format!(
                "json-schema: the host failed to {what} it; simplify its patterns"
            ))),
            Err(_) if until == call.deadline => Err(Error::Timeout),
            Err(_) => Err(refused(format!(
                "the host could not {what} it within {} ([limits] schema_timeout)",
                humantime::format_duration(self.limits.timeout)
            ))),
        }
    }
}

impl Schema {
    fn check(&self, content: &str) -> Result<(), Error> {
        let document: Value = serde_json::from_str(content).map_err(|err| {
            gateway(format!(
                "the reply is not the JSON the schema asks for: {err}"
            ))
        })?;
        self.validator
            .validate(&document)
            .map_err(|err| gateway(format!("the reply does not match the JSON schema: {err}")))
    }
}

fn refused(why: String) -> Error {
    Error::InvalidRequest(format!("json-schema refused: {why}"))
}

/// Compiles a schema (with `patterns` patterns) whose patterns each compile
/// to at most `regex_bytes`.
fn compile(value: Value, patterns: usize, regex_bytes: usize) -> Result<Schema, Error> {
    let engine = jsonschema::PatternOptions::fancy_regex()
        .size_limit(regex_bytes)
        .dfa_size_limit(regex_bytes);
    let validator = jsonschema::options()
        .with_pattern_options(engine)
        .build(&value)
        .map_err(|err| {
            Error::InvalidRequest(format!(
                "json-schema is not a valid JSON Schema, or a pattern in it is not a regular expression \
                 that compiles within {regex_bytes} bytes ([limits] schema_regex_bytes): {err}"
            ))
        })?;
    Ok(Schema {
        value,
        validator,
        patterns,
    })
}

/// How many `pattern`s and `patternProperties` keys `schema` holds, and their
/// total length. Walks the document without recursion.
fn patterns(schema: &Value) -> (usize, usize) {
    let (mut count, mut bytes) = (0, 0);
    let mut pending = vec![schema];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    match (key.as_str(), child) {
                        ("pattern", Value::String(pattern)) => {
                            count += 1;
                            bytes += pattern.len();
                        }
                        ("patternProperties", Value::Object(properties)) => {
                            count += properties.len();
                            bytes += properties.keys().map(String::len).sum::<usize>();
                        }
                        _ => {}
                    }
                    pending.push(child);
                }
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    (count, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas(cache_entries: usize, max_patterns: usize) -> Schemas {
        Schemas::new(SchemaLimits {
            cache_entries,
            max_patterns,
            ..SchemaLimits::default()
        })
    }

    fn compiled(text: &str) -> Arc<Schema> {
        let (value, patterns) = schemas(1, 64).admit(text).unwrap();
        Arc::new(compile(value, patterns, 1 << 20).unwrap())
    }

    #[test]
    fn the_cache_keeps_few_schemas_and_one_schemas_worth_of_patterns() {
        let cache = schemas(2, 2);
        let plain = |n: u32| format!(r#"{{"maximum": {n}}}"#);
        for n in 0..3 {
            cache.remember("p", &plain(n), compiled(&plain(n)));
        }
        assert!(cache.cached("p", &plain(0)).is_none(), "over cache_entries");
        assert!(cache.cached("p", &plain(2)).is_some());
        assert!(cache.cached("q", &plain(2)).is_none(), "per plugin");

        let two = r#"{"anyOf": [{"pattern": "a"}, {"pattern": "b"}]}"#;
        cache.remember("p", two, compiled(two));
        let three = r#"{"anyOf": [{"pattern": "a"}, {"pattern": "b"}, {"pattern": "c"}]}"#;
        cache.remember("p", three, compiled(three));
        assert!(cache.cached("p", two).is_none(), "over max_patterns");
        assert!(cache.cached("p", three).is_some(), "the newest is kept");
    }

    #[test]
    fn patterns_are_counted_wherever_they_are() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {"a": {"type": "string", "pattern": "^x+$"}},
            "patternProperties": {"^p": {}, "^q": {"pattern": "y"}},
            "anyOf": [{"pattern": "zz"}]
        });
        assert_eq!(patterns(&schema), (5, 4 + 2 + 2 + 1 + 2));
    }
}
