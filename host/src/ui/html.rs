//! The few pieces every page is built from: escaping, the page frame, times
//! and ages. Pages are `format!` strings: every value that did not come from
//! this crate goes through [`esc`] (text and attribute values alike) or
//! [`url`] (query values), and nothing else is interpolated.

use std::fmt::Write;

use crate::config::Scope;

/// `text` with `& < > " '` escaped: safe in element text and in quoted
/// attribute values.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` percent-encoded for a query string value.
pub(super) fn url(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A time span for people: `45s`, `12m 3s`, `3h 5m`, `2d 4h`.
pub(super) fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// How long ago `at_ms` was, by `now_ms`; `–` for none.
pub(super) fn ago(now_ms: i64, at_ms: Option<i64>) -> String {
    match at_ms {
        Some(at) if at > now_ms => format!("in {}", age(at - now_ms)),
        Some(at) => format!("{} ago", age(now_ms - at)),
        None => "–".into(),
    }
}

/// A UTC time, to the second (RFC 3339).
pub(super) fn time(at_ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at_ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A JSON value, pretty-printed and escaped, in a `<pre>`.
pub(super) fn json(value: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    format!("<pre>{}</pre>", esc(&text))
}

/// An error history (`[{"attempt", "at_ms", "error"}]`) as a table.
pub(super) fn errors(history: &serde_json::Value) -> String {
    let entries = history.as_array().map(Vec::as_slice).unwrap_or_default();
    if entries.is_empty() {
        return "<p class=\"quiet\">No failures.</p>".into();
    }
    let mut rows = String::new();
    for entry in entries {
        let attempt = entry["attempt"]
            .as_i64()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let at = entry["at_ms"].as_i64().map(time).unwrap_or_default();
        let error = entry["error"].as_str().unwrap_or_default();
        let _ = write!(
            rows,
            "<tr><td class=\"num\">{attempt}</td><td>{at}</td><td class=\"error\">{}</td></tr>",
            esc(error)
        );
    }
    format!(
        "<table class=\"errors\"><thead><tr><th>Attempt</th><th>At (UTC)</th><th>Error</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

/// Who is looking, for the page frame.
pub(super) struct Frame<'a> {
    /// The signed-in token's name and scope; `None` when no token is configured.
    pub(super) who: Option<(&'a str, Scope)>,
    pub(super) csrf: &'a str,
}

/// A whole page: `title`, the navigation (`current` marked), and `body`.
pub(super) fn page(title: &str, current: &str, frame: &Frame<'_>, body: &str) -> String {
    let mut nav = String::new();
    for (href, label) in [
        ("/ui", "Overview"),
        ("/ui/units", "Units"),
        ("/ui/dead", "Dead letters"),
        ("/ui/hosts", "Hosts & plugins"),
    ] {
        let class = if label == current {
            " class=\"current\""
        } else {
            ""
        };
        let _ = write!(nav, "<a href=\"{href}\"{class}>{label}</a>");
    }
    let session = match frame.who {
        Some((name, scope)) => format!(
            "<form method=\"post\" action=\"/ui/logout\" class=\"session\"><span>{} ({})</span>\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Sign out</button></form>",
            esc(name),
            scope.as_str(),
            esc(frame.csrf)
        ),
        None => {
            "<span class=\"session quiet\">open: no tokens configured (loopback only)</span>".into()
        }
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Sluice</title><link rel=\"stylesheet\" href=\"/ui/static/sluice.css\">\
         <script src=\"/ui/static/htmx.min.js\" defer></script></head>\
         <body><header><strong>Sluice</strong><nav>{nav}</nav>{session}</header>\
         <main><h1>{title}</h1>{body}</main></body></html>",
        title = esc(title)
    )
}
