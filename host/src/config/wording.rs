//! Reading errors in Sluice's own words: the key at fault, where it came from
//! (the file or the environment variable), and what to write instead. An
//! unknown key names the closest valid one; a bad duration lists the forms
//! that are accepted. Anything else keeps serde's description.

use figment::error::{Actual, Kind};

use super::ConfigError;

/// What `humantime_serde` expects, the mark of a duration key.
const DURATION: &str = "a duration";

/// The accepted duration forms, for a value that is not one.
const DURATION_FORMS: &str = "write a number and a unit, such as \"500ms\", \"30s\", \"10m\", \"2h\" or \"1day\" (units: ms, s, m, h, d, w; parts add up: \"1m 30s\")";

pub(super) fn describe(err: figment::Error) -> ConfigError {
    // The path ends with the key at fault, an unknown one included.
    let path = &err.path;
    let origin = origin(&err, path);
    if path.is_empty() {
        // Not one key's fault: the file itself (not valid TOML, say).
        return ConfigError::Unreadable(format!("invalid configuration{origin}: {}", err.kind));
    }
    let message = match &err.kind {
        Kind::UnknownField(field, valid) => {
            format!("is not a known key{origin}; {}", suggestion(field, valid))
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected)
            if expected == DURATION =>
        {
            format!(
                "{} is not a duration{origin}: {DURATION_FORMS}",
                shown(actual)
            )
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("expected {expected}, found {}{origin}", shown(actual))
        }
        other => format!("{other}{origin}"),
    };
    ConfigError::Invalid {
        key: path.join("."),
        message,
    }
}

/// " (in FILE)" or " (from the environment variable SLUICE_X)".
fn origin(err: &figment::Error, path: &[String]) -> String {
    let Some(metadata) = &err.metadata else {
        return String::new();
    };
    match &metadata.source {
        Some(figment::Source::File(file)) => format!(" (in {})", file.display()),
        _ if metadata.name.contains("environment") => format!(
            " (from the environment variable SLUICE_{})",
            path.join("__").to_ascii_uppercase()
        ),
        _ => String::new(),
    }
}

fn shown(actual: &Actual) -> String {
    match actual {
        Actual::Str(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}

/// "did you mean `slots`?" when a valid key is close, else the valid keys.
fn suggestion(field: &str, valid: &[&str]) -> String {
    let closest = valid
        .iter()
        .map(|candidate| (strsim::jaro_winkler(field, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match closest {
        Some((_, candidate)) => format!("did you mean `{candidate}`?"),
        None => format!(
            "the keys here are {}",
            valid
                .iter()
                .map(|key| format!("`{key}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
