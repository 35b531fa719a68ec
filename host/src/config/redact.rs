//! What may be shown of a configuration value that can hold a credential.
//!
//! `sluice config` prints the whole effective configuration, and error
//! messages and logs print database URLs. Both go through here, so a password
//! is hidden the same way wherever it appears: by where it sits in a URL
//! (userinfo, query, fragment) and by the name of the key that holds it,
//! whatever section the key is in.

/// What a hidden value or URL part is replaced with.
const HIDDEN: &str = "***";

/// `url` with its credentials replaced by `***`: the password, a user name
/// that could be a token, query values and the fragment. A database URL keeps
/// its user name (a role) and the query values whose names do not look secret
/// (`sslmode`, `options`), which say what the URL points to. Anything that is
/// not a URL is returned unchanged.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return redact_unparsed(url);
    };
    let mut changed = false;
    let database = matches!(parsed.scheme(), "postgres" | "postgresql" | "sqlite");
    if parsed.password().is_some() {
        changed |= parsed.set_password(Some(HIDDEN)).is_ok();
    }
    if !database && !parsed.username().is_empty() {
        changed |= parsed.set_username(HIDDEN).is_ok();
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(name, value)| {
            let hide = !database || looks_secret(&name);
            let value = if hide { HIDDEN.into() } else { value.into() };
            (name.into(), value)
        })
        .collect();
    if pairs.iter().any(|(_, value)| value == HIDDEN) {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if parsed.fragment().is_some() {
        parsed.set_fragment(Some(HIDDEN));
        changed = true;
    }
    if changed {
        parsed.into()
    } else {
        url.to_owned()
    }
}

/// A URL the `url` crate refuses (the database's driver may still take it):
/// whatever sits between `://` and the last `@` after its `:` is hidden.
fn redact_unparsed(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:{HIDDEN}{}", &url[..scheme + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

/// Hides, anywhere in `value`: every string held by a key that looks secret,
/// and the credentials of every string that is a URL.
pub(super) fn redact_tree(value: &mut toml::Value) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table.iter_mut() {
                if looks_secret(key) {
                    hide_strings(value);
                } else {
                    redact_tree(value);
                }
            }
        }
        toml::Value::Array(values) => values.iter_mut().for_each(redact_tree),
        toml::Value::String(text) if text.contains("://") => *text = redact_url(text),
        _ => {}
    }
}

fn hide_strings(value: &mut toml::Value) {
    match value {
        toml::Value::String(text) => *text = HIDDEN.into(),
        toml::Value::Table(table) => table.iter_mut().for_each(|(_, value)| hide_strings(value)),
        toml::Value::Array(values) => values.iter_mut().for_each(hide_strings),
        _ => {}
    }
}

/// Whether a key probably holds a secret: one of its words (split at `_`,
/// `-` and `.`) is a secret's name, or it ends in one (`apitoken`). Keys
/// ending in `_env` name an environment variable, not its value, and
/// plurals such as `max_tokens` count things.
fn looks_secret(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "secret",
        "token",
        "password",
        "passwd",
        "pwd",
        "key",
        "apikey",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "bearer",
        "cookie",
        "signature",
        "private",
    ];
    const ENDINGS: &[&str] = &["secret", "token", "password", "apikey"];
    let key = key.to_ascii_lowercase();
    if key.ends_with("_env") {
        return false;
    }
    key.split(['_', '-', '.']).any(|word| WORDS.contains(&word))
        || ENDINGS.iter().any(|ending| key.ends_with(ending))
}

#[cfg(test)]
mod tests {
    use super::{looks_secret, redact_url};

    #[test]
    fn urls_lose_their_credentials_and_keep_where_they_point() {
        for (url, shown) in [
            (
                "postgres://app:hunter2@db/queue",
                "postgres://app:***@db/queue",
            ),
            (
                "postgres://app@db/queue?sslmode=require&sslpassword=hunter2",
                "postgres://app@db/queue?sslmode=require&sslpassword=***",
            ),
            (
                "postgres://db/q?options=-c%20search_path%3Dmine",
                "postgres://db/q?options=-c%20search_path%3Dmine",
            ),
            (
                "https://user:pa55@llm.example/v1?key=k#t",
                "https://***:***@llm.example/v1?key=***#***",
            ),
            (
                "https://ghp_token@git.example/repo",
                "https://***@git.example/repo",
            ),
            ("https://hooks.example.com/x", "https://hooks.example.com/x"),
            ("sqlite://queue.db", "sqlite://queue.db"),
            ("postgres://app:p@ss@db/q", "postgres://app:***@db/q"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn secret_keys_are_told_by_their_words() {
        for key in [
            "signing_secret",
            "webhook_token",
            "password",
            "api_key",
            "apiKey",
            "x-auth",
            "accesstoken",
        ] {
            assert!(looks_secret(key), "{key}");
        }
        for key in ["max_tokens", "api_key_env", "url", "monkey", "timeout"] {
            assert!(!looks_secret(key), "{key}");
        }
    }
}
