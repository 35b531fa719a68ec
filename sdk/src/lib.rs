//! Write Sluice task plugins in Rust.
//!
//! A Sluice plugin is a WebAssembly component (built for `wasm32-wasip2`) that
//! targets the `handler` world of the `sluice:task` WIT package. This crate
//! carries that package (`wit/task.wit`), generates its bindings once, and
//! adds what every plugin otherwise writes by hand:
//!
//! - [`WorkItem::parse_payload`], [`Outcome::json`] and [`NewItem::json`]:
//!   payloads and outputs through serde, with errors that say what was wrong;
//! - [`chat::Chat`]: an `llm` call built step by step, whose reply can be
//!   parsed into your own type against a JSON schema;
//! - [`failure`]: the standard mapping of `llm` and `http` errors to
//!   `retryable` and `permanent`;
//! - [`config::Config`]: the operator's values, required or parsed, with
//!   errors naming the key;
//! - [`log`]: one call per level.
//!
//! ```ignore
//! use sluice_sdk::{Guest, Mode, Outcome, PluginInfo, TaskError, WorkItem};
//!
//! struct Echo;
//!
//! impl Guest for Echo {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("echo", env!("CARGO_PKG_VERSION"), &["echo"], Mode::Item)
//!     }
//!
//!     fn process(items: Vec<WorkItem>) -> Result<Outcome, TaskError> {
//!         let item = sluice_sdk::only(items)?;
//!         let payload: serde_json::Value = item.parse_payload()?;
//!         Outcome::json(&payload)
//!     }
//! }
//!
//! sluice_sdk::export!(Echo);
//! ```
//!
//! The raw imports stay available as [`llm`], [`http`], [`imports::log`] and
//! [`imports::config`], with the contract's types.

/// The bindings as `wit-bindgen` generates them; the crate root re-exports
/// what authors use.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "handler",
        // `sluice_sdk::export!(MyPlugin)` works from the plugin's crate.
        pub_export_macro: true,
        default_bindings_module: "sluice_sdk::bindings",
    });
}

pub mod chat;
pub mod config;
pub mod failure;
mod item;
pub mod log;

pub use bindings::sluice::task::types::{Mode, NewItem};
pub use bindings::sluice::task::{http, llm};
pub use bindings::{Guest, Outcome, PluginInfo, TaskError, WorkItem, export};
pub use item::only;

/// The contract's imports as generated, for what the helpers do not cover.
pub mod imports {
    pub use crate::bindings::sluice::task::{config, http, llm, log};
}

/// The version of the `sluice:task` WIT package this crate carries. A host
/// loads plugins built for a compatible version (for 0.x, the same minor).
pub const CONTRACT_VERSION: &str = "0.1.0";
