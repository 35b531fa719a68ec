//! Log lines at each level, in one call. They land in the host's logs inside
//! the span of the unit being processed (its key, item ids and attempt).

pub use crate::bindings::sluice::task::log::{Level, log};

pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message.as_ref());
}

pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message.as_ref());
}

pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message.as_ref());
}

pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message.as_ref());
}

pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message.as_ref());
}
