//! A provider's rate-limit headers, read on every reply: when one says the
//! requests or tokens left in its window are used up, every request to the
//! provider waits until the window resets, as for a `Retry-After`, instead
//! of running into a 429.
//!
//! OpenAI (and compatible servers) send `x-ratelimit-remaining-requests` and
//! `x-ratelimit-reset-requests` (a duration such as `1s`, `6m0s` or `20ms`),
//! and the same for `tokens`; Anthropic sends
//! `anthropic-ratelimit-requests-remaining` and
//! `anthropic-ratelimit-requests-reset` (an RFC 3339 time), and the same for
//! `tokens` (and `input-tokens`, `output-tokens`). Both kinds are read
//! whatever the provider's `kind`: gateways mix them.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// The longest wait a reset header may impose; a later reset is capped.
const LONGEST_WAIT: Duration = Duration::from_secs(3600);

/// How long to hold every request to the provider: until the latest reset of
/// a limit whose remaining count is zero. `None` when nothing is used up (or
/// the headers are absent or unreadable).
pub(super) fn exhausted(headers: &HeaderMap) -> Option<Duration> {
    exhausted_at(headers, SystemTime::now())
}

/// [`exhausted`] as seen at `now`.
fn exhausted_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    let spent = |name: &str| text(name).and_then(|v| v.parse::<f64>().ok()) == Some(0.0);
    let mut wait: Option<Duration> = None;
    for limit in ["requests", "tokens"] {
        if spent(&format!("x-ratelimit-remaining-{limit}"))
            && let Some(reset) = text(&format!("x-ratelimit-reset-{limit}")).and_then(go_duration)
        {
            wait = wait.max(Some(reset));
        }
    }
    for limit in ["requests", "tokens", "input-tokens", "output-tokens"] {
        if spent(&format!("anthropic-ratelimit-{limit}-remaining"))
            && let Some(at) = text(&format!("anthropic-ratelimit-{limit}-reset"))
                .and_then(|v| humantime::parse_rfc3339_weak(v).ok())
        {
            let reset = at.duration_since(now).unwrap_or(Duration::ZERO);
            wait = wait.max(Some(reset));
        }
    }
    wait.map(|wait| wait.min(LONGEST_WAIT))
}

/// A duration as Go prints it (`1s`, `6m0s`, `1h2m3.5s`, `20ms`, `1.5µs`).
fn go_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * seconds;
    }
    (total.is_finite() && total >= 0.0)
        .then(|| Duration::from_secs_f64(total.min(LONGEST_WAIT.as_secs_f64())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(go_duration("1m30.5s"), Some(Duration::from_millis(90_500)));
        assert_eq!(go_duration("2h"), Some(LONGEST_WAIT));
        for bad in ["", "5", "1x", "s", "-1s"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn openai_headers_hold_only_when_a_limit_is_used_up() {
        let left = headers(&[
            ("x-ratelimit-remaining-requests", "3"),
            ("x-ratelimit-reset-requests", "6m0s"),
        ]);
        assert_eq!(exhausted(&left), None);
        let spent = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "2s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "5s"),
        ]);
        assert_eq!(exhausted(&spent), Some(Duration::from_secs(5)));
    }

    #[test]
    fn anthropic_resets_are_times() {
        let now = humantime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let spent = headers(&[
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:07Z"),
            ("anthropic-ratelimit-requests-remaining", "10"),
            ("anthropic-ratelimit-requests-reset", "2026-01-01T00:01:00Z"),
        ]);
        assert_eq!(exhausted_at(&spent, now), Some(Duration::from_secs(7)));
        let past = headers(&[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2025-12-31T23:59:00Z"),
        ]);
        assert_eq!(exhausted_at(&past, now), Some(Duration::ZERO));
        let garbled = headers(&[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "tomorrow"),
        ]);
        assert_eq!(exhausted_at(&garbled, now), None);
    }
}
