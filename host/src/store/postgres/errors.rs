//! Postgres SQLSTATEs that mean "not now" rather than "never".

use crate::store::error::Kind;

/// What SQLSTATE `code` means for the write that met it.
pub(crate) fn kind(code: &str) -> Kind {
    match code {
        // Serialization failure and deadlock (the transaction may be retried),
        // and a row lock not taken within lock_timeout: one row is busy.
        "40001" | "40P01" | "55P03" => Kind::Contention,
        // A read-only transaction: the server is a standby (a failover is
        // under way, or the URL names a replica until it is promoted).
        "25006" => Kind::Outage,
        _ => match code.get(..2) {
            // Connection exceptions; insufficient resources (disk full, out of
            // memory, too many connections); operator intervention (statement
            // cancelled or timed out, shutdown, crash recovery, not accepting
            // connections yet); system errors (I/O failures under the server).
            Some("08" | "53" | "57" | "58") => Kind::Outage,
            _ => Kind::Refusal,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, kind};

    #[test]
    fn outages_contention_and_refusals_are_told_apart() {
        for code in [
            "08006", "53100", "53300", "57014", "57P01", "58030", "25006",
        ] {
            assert_eq!(kind(code), Kind::Outage, "{code}");
        }
        for code in ["55P03", "40001", "40P01"] {
            assert_eq!(kind(code), Kind::Contention, "{code}");
        }
        // A NUL byte in text, a check constraint, a missing privilege, an
        // unsupported JSON escape.
        for code in ["22021", "23514", "42501", "22P05"] {
            assert_eq!(kind(code), Kind::Refusal, "{code}");
        }
    }
}
