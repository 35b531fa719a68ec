//! How deeply a JSON document nests, counted without recursion.
//!
//! serde_json checks that a guest's output is JSON without a depth limit (its
//! `RawValue` skips values iteratively), but the databases do not: SQLite's
//! `json_valid` refuses documents nested more than 1,000 levels and Postgres
//! runs out of stack on deep `jsonb`, and host tools that parse outputs into
//! values stop at serde_json's limit of 128. An output accepted by `sluice exec`
//! must also be stored by `sluice run`, so both refuse deep documents here.

/// Deepest nesting any configuration may allow: under serde_json's 128 with
/// room for the envelopes host tools wrap an output in (`sluice outputs`
/// parses each one), and far under what SQLite (1,000) and Postgres accept.
pub const MAX_DEPTH_ACCEPTED: usize = 100;

/// Whether `json` (already known to be valid JSON) nests arrays and objects
/// more than `max` levels deep.
pub(crate) fn deeper_than(json: &str, max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json.as_bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_arrays_and_objects_but_not_brackets_in_strings() {
        assert!(!deeper_than("1", 0));
        assert!(deeper_than("[]", 0));
        assert!(!deeper_than(r#"{"a": [1, {"b": "[[[[\"[["}]}"#, 3));
        assert!(deeper_than(r#"{"a": [1, {"b": [[]]}]}"#, 3));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(deeper_than(&deep, 128));
    }
}
