//! The operator's values for the task type (`[tasks.<task_type>.config]`),
//! read through the `config` import: required, parsed or optional, with a
//! permanent error naming the key when one is missing or malformed.

use std::str::FromStr;

use crate::TaskError;

pub use crate::bindings::sluice::task::config::get;

/// A view of the config values. [`Config::host`] reads the host's import;
/// [`Config::with`] reads anything else, such as a map in a unit test.
pub struct Config<G = fn(&str) -> Option<String>> {
    get: G,
}

impl Config {
    /// The values the operator set for this task type.
    pub fn host() -> Self {
        Self { get }
    }
}

impl<G: Fn(&str) -> Option<String>> Config<G> {
    /// Values read through `get`.
    pub fn with(get: G) -> Self {
        Self { get }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<String> {
        (self.get)(key)
    }

    /// The value of `key`, trimmed; unset or blank is a permanent error that
    /// says to set it to `what`.
    pub fn required(&self, key: &str, what: &str) -> Result<String, TaskError> {
        self.get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                TaskError::Permanent(format!(
                    "config value `{key}` is not set: set it to {what} under \
                     [tasks.<task_type>.config] in the Sluice configuration"
                ))
            })
    }

    /// The value of `key` as a positive integer, `None` when unset.
    pub fn positive<T>(&self, key: &str) -> Result<Option<T>, TaskError>
    where
        T: FromStr + PartialOrd + From<u8>,
    {
        self.parsed(key, "a positive integer", |n: &T| *n > T::from(0))
    }

    /// The value of `key` as `true` or `false`, `default` when unset.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, TaskError> {
        Ok(self
            .parsed(key, "`true` or `false`", |_: &bool| true)?
            .unwrap_or(default))
    }

    /// The value of `key` parsed as `T` and accepted by `valid`, `None` when
    /// unset; otherwise a permanent error saying it must be `what`.
    pub fn parsed<T: FromStr>(
        &self,
        key: &str,
        what: &str,
        valid: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, TaskError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        value
            .trim()
            .parse::<T>()
            .ok()
            .filter(|v| valid(v))
            .map(Some)
            .ok_or_else(|| {
                TaskError::Permanent(format!(
                    "config value `{key}` must be {what}, got {value:?}"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config<impl Fn(&str) -> Option<String>> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::with(move |key| map.get(key).cloned())
    }

    fn permanent<T: std::fmt::Debug>(result: Result<T, TaskError>) -> String {
        match result {
            Err(TaskError::Permanent(m)) => m,
            other => panic!("expected a permanent error, got {other:?}"),
        }
    }

    #[test]
    fn required_values_name_the_key_when_missing() {
        let c = config(&[("url", " https://h/ "), ("blank", " ")]);
        assert_eq!(c.required("url", "a URL").unwrap(), "https://h/");
        let m = permanent(c.required("secret", "the signing secret"));
        assert!(
            m.contains("`secret` is not set") && m.contains("the signing secret"),
            "{m}"
        );
        assert!(permanent(c.required("blank", "x")).contains("`blank`"));
    }

    #[test]
    fn numbers_and_flags_are_parsed_or_refused_with_the_value() {
        let c = config(&[("n", "12"), ("zero", "0"), ("word", "soon"), ("on", "true")]);
        assert_eq!(c.positive::<u32>("n").unwrap(), Some(12));
        assert_eq!(c.positive::<u64>("unset").unwrap(), None);
        let m = permanent(c.positive::<u32>("zero"));
        assert!(
            m.contains("`zero` must be a positive integer, got \"0\""),
            "{m}"
        );
        assert!(permanent(c.positive::<u64>("word")).contains("\"soon\""));
        assert!(c.flag("on", false).unwrap());
        assert!(c.flag("unset", true).unwrap());
        assert!(permanent(c.flag("word", false)).contains("`true` or `false`"));
    }
}
