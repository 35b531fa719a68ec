//! SQLite result codes that mean "not now" rather than "never".

use crate::store::error::Kind;

/// What SQLite's (extended) result code `code` means for the write that met
/// it. A busy or locked database is an outage, not contention: SQLite has one
/// write lock for the whole file, so whoever holds it holds up every write.
pub(crate) fn kind(code: i32) -> Kind {
    // The primary code is the low byte of an extended code.
    match code & 0xff {
        5 // BUSY: another connection holds the write lock
        | 6 // LOCKED: a conflict inside this connection's shared cache
        | 7 // NOMEM
        | 8 // READONLY: the file cannot be written now
        | 10 // IOERR
        | 13 // FULL: the disk is full
        | 14 // CANTOPEN
        | 15 // PROTOCOL: a locking protocol race
        => Kind::Outage,
        _ => Kind::Refusal,
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, kind};

    #[test]
    fn outages_are_told_from_refusals() {
        // BUSY, BUSY_SNAPSHOT, FULL, IOERR_WRITE.
        for code in [5, 517, 13, 778] {
            assert_eq!(kind(code), Kind::Outage, "{code}");
        }
        // CONSTRAINT_CHECK, TOOBIG, a generic SQL error (malformed JSON).
        for code in [275, 18, 1] {
            assert_eq!(kind(code), Kind::Refusal, "{code}");
        }
    }
}
