//! How the CLI shows a stored time: RFC 3339 in UTC, to the millisecond, for
//! people; `--json` output keeps the stored epoch milliseconds for programs.

use std::time::{Duration, UNIX_EPOCH};

/// `ms` (milliseconds since the Unix epoch) as `2026-01-02T03:04:05.678Z`.
pub fn rfc3339(ms: i64) -> String {
    let since_epoch = Duration::from_millis(u64::try_from(ms).unwrap_or_default());
    humantime::format_rfc3339_millis(UNIX_EPOCH + since_epoch).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn epoch_milliseconds_read_as_utc() {
        assert_eq!(
            super::rfc3339(1_767_323_045_678),
            "2026-01-02T03:04:05.678Z"
        );
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}
