//! Shared helpers for the host's integration tests: where the test plugins are,
//! a runtime per test, work items and call requests, and outbound stand-ins.
#![allow(dead_code)] // each test binary uses its own subset

pub mod audit;
pub mod host;
pub mod http_client;
pub mod outbound;
pub mod pg_cluster;
pub mod process;
pub mod proxy;
pub mod stores;
pub mod tmpfs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sluice::imports::{CallContext, DenyAll, Outbound, TaskConfig};
use sluice::outbound::UsageMeter;
use sluice::runtime::bindings::types::WorkItem;
use sluice::runtime::bindings::{http, llm};
use sluice::runtime::limits::CallLimits;
use sluice::runtime::registry::{self, Plugin};
use sluice::runtime::{CallOutcome, CallRequest, Cancellation, Runtime, RuntimeConfig};

/// The workspace's `target/` folder (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// A path inside the workspace (the repository's root).
pub fn workspace_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// A guest plugin built by `scripts/build-plugins`, by crate file name.
pub fn guest_wasm(name: &str) -> PathBuf {
    let path = target_dir()
        .join("wasm32-wasip2/plugin")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: build the guest plugins first with scripts/build-plugins",
        path.display()
    );
    path
}

pub fn adversary_wasm() -> PathBuf {
    guest_wasm("sluice_test_adversary")
}

/// A temporary plugins folder holding `files` (name, contents).
pub fn plugin_dir(files: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("write plugin");
    }
    dir
}

/// A runtime sized for `slots` concurrent calls, sharing one compile cache
/// across tests (entries are written atomically, so parallel tests are safe).
pub fn runtime(slots: u32) -> Runtime {
    Runtime::new(RuntimeConfig {
        slots,
        cache_dir: Some(target_dir().join("sluice-test-cache")),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

pub async fn adversary(runtime: &Runtime) -> Arc<Plugin> {
    Arc::new(
        registry::load_file(runtime, &adversary_wasm())
            .await
            .expect("the adversary plugin loads"),
    )
}

pub fn item(task_type: &str, payload: &str) -> WorkItem {
    WorkItem {
        id: 1,
        task_type: task_type.into(),
        work_unit_key: "test-key".into(),
        payload: payload.into(),
        attempt: 1,
        enqueued_at_ms: 0,
    }
}

pub fn request(task_type: &str, payload: &str, timeout: Duration) -> CallRequest {
    CallRequest {
        items: vec![item(task_type, payload)],
        limits: CallLimits {
            timeout,
            ..CallLimits::default()
        },
        task_config: TaskConfig::default(),
        outbound: Arc::new(DenyAll),
        cancel: Cancellation::never(),
        usage: UsageMeter::default(),
    }
}

/// An outbound implementation that never answers: the hung LLM provider.
pub struct Hang;

#[async_trait::async_trait]
impl Outbound for Hang {
    async fn llm(&self, _: &CallContext, _: llm::Request) -> Result<llm::Response, llm::Error> {
        std::future::pending().await
    }

    async fn http(&self, _: &CallContext, _: http::Request) -> Result<http::Response, http::Error> {
        std::future::pending().await
    }
}

/// Runs the well-behaved `echo` task and asserts it succeeds: the host is unharmed.
pub async fn assert_echo_works(plugin: &Plugin) {
    let outcome = plugin
        .call(request(
            "echo",
            r#"{"still":"alive"}"#,
            Duration::from_secs(30),
        ))
        .await
        .expect("echo call");
    match outcome {
        CallOutcome::Ok(out) => assert_eq!(
            out.output.expect("echo output").get(),
            r#"{"still":"alive"}"#
        ),
        other => panic!("echo should succeed after a misbehaving call, got {other:?}"),
    }
}

/// HMAC-SHA256 written out from its definition (RFC 2104), independently of
/// the webhook plugin's implementation; lowercase hex.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}
