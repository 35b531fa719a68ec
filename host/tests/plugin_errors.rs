//! Bad plugins and bad folders are refused with an error that names the file
//! and says what is wrong, and a bad plugin never hides the good ones.

mod support;

use std::os::unix::fs::MetadataExt;

use sluice::runtime::Registry;
use sluice::runtime::registry::{self, PluginError};
use support::{adversary_wasm, plugin_dir, runtime};

fn adversary_bytes() -> Vec<u8> {
    std::fs::read(adversary_wasm()).unwrap()
}

/// Loads a folder holding just `name` = `bytes` and returns the one error.
async fn single_error(name: &str, bytes: Vec<u8>) -> PluginError {
    let dir = plugin_dir(&[(name, bytes)]);
    let report = registry::scan(&runtime(1), dir.path()).await.unwrap();
    assert!(report.plugins.is_empty(), "{name} should not load");
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    report.errors.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_core_module_is_refused_as_not_a_component() {
    let core = wat::parse_str(r#"(module (func (export "process")))"#).unwrap();
    let err = single_error("core.wasm", core).await;
    assert!(matches!(err, PluginError::CoreModule(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("core.wasm"), "{message}");
    assert!(
        message.contains("wasm32-wasip2"),
        "says how to fix it: {message}"
    );
}

#[tokio::test]
async fn a_file_that_is_not_wasm_is_refused() {
    let err = single_error("notes.wasm", b"hello, I am text".to_vec()).await;
    assert!(matches!(err, PluginError::NotWasm(_)), "{err:?}");
    assert!(err.to_string().contains("notes.wasm"));
}

#[tokio::test]
async fn a_truncated_plugin_is_refused_as_corrupt() {
    let mut bytes = adversary_bytes();
    bytes.truncate(bytes.len() / 2);
    let err = single_error("truncated.wasm", bytes).await;
    assert!(matches!(err, PluginError::Compile { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("truncated.wasm") && message.contains("truncated or corrupt"));
}

#[tokio::test]
async fn a_component_of_another_world_is_refused_naming_what_is_missing() {
    let other_world = wat::parse_str(
        r#"(component
            (core module $m (func (export "run") (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (func (export "run") (result u32) (canon lift (core func $i "run"))))"#,
    )
    .unwrap();
    let err = single_error("other.wasm", other_world).await;
    assert!(matches!(err, PluginError::WrongWorld { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("other.wasm"), "{message}");
    assert!(message.contains("handler"), "names the world: {message}");
    assert!(
        message.contains("describe"),
        "names the missing export: {message}"
    );
}

#[tokio::test]
async fn a_plugin_built_for_another_major_version_is_refused() {
    let newer = wat::parse_str(
        r#"(component
            (import "sluice:task/log@1.0.0" (instance
                (export "log" (func (param "message" string))))))"#,
    )
    .unwrap();
    let err = single_error("newer.wasm", newer).await;
    assert!(
        matches!(err, PluginError::IncompatibleContract { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("newer.wasm"), "{message}");
    assert!(
        message.contains("sluice:task@1.0.0"),
        "names its version: {message}"
    );
    assert!(
        message.contains("sluice:task@0.1.0"),
        "names ours: {message}"
    );
}

#[tokio::test]
async fn a_component_importing_a_foreign_interface_is_refused() {
    let foreign = wat::parse_str(
        r#"(component
            (import "acme:db/query@1.0.0" (instance
                (export "run" (func (param "sql" string))))))"#,
    )
    .unwrap();
    let err = single_error("foreign.wasm", foreign).await;
    let message = err.to_string();
    assert!(message.contains("acme:db/query@1.0.0"), "{message}");
}

#[tokio::test]
async fn a_component_importing_wasi_http_is_told_how_to_build_without_it() {
    // What a default componentize-js build brings along.
    let fetching = wat::parse_str(
        r#"(component
            (import "wasi:http/outgoing-handler@0.2.3" (instance
                (export "handle" (func (param "request" u32))))))"#,
    )
    .unwrap();
    let err = single_error("fetching.wasm", fetching).await;
    assert!(matches!(err, PluginError::WasiHttp { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("fetching.wasm")
            && message.contains("wasi:http/outgoing-handler@0.2.3")
            && message.contains("--disable http --disable fetch-event"),
        "{message}"
    );
}

#[tokio::test]
async fn two_plugins_claiming_one_task_type_are_refused() {
    let dir = plugin_dir(&[("a.wasm", adversary_bytes()), ("b.wasm", adversary_bytes())]);
    let rt = runtime(1);
    let report = registry::scan(&rt, dir.path()).await.unwrap();
    assert_eq!(report.plugins.len(), 1, "the first one still loads");
    assert!(!report.errors.is_empty());
    let message = report.errors[0].to_string();
    assert!(
        message.contains("a.wasm") && message.contains("b.wasm"),
        "names both files: {message}"
    );
    let errors = Registry::load(&rt, dir.path())
        .await
        .err()
        .expect("load refuses");
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, PluginError::DuplicateTaskType { .. }))
    );
}

#[tokio::test]
async fn a_missing_plugins_folder_is_refused() {
    let missing = std::env::temp_dir().join("sluice-no-such-plugins-folder");
    let err = registry::scan(&runtime(1), &missing).await.err().unwrap();
    assert!(matches!(err, PluginError::MissingDir(_)), "{err:?}");
    assert!(err.to_string().contains("sluice-no-such-plugins-folder"));
}

#[tokio::test]
async fn a_bad_plugin_does_not_hide_the_good_ones() {
    let dir = plugin_dir(&[
        ("bad.wasm", b"not wasm at all".to_vec()),
        ("good.wasm", adversary_bytes()),
    ]);
    let report = registry::scan(&runtime(1), dir.path()).await.unwrap();
    assert_eq!(report.plugins.len(), 1);
    assert_eq!(report.plugins[0].name, "adversary");
    assert_eq!(report.errors.len(), 1);
}

#[tokio::test]
async fn compiled_plugins_are_cached_on_disk_and_reused() {
    let cache = tempfile::tempdir().unwrap();
    let rt = sluice::runtime::Runtime::new(sluice::runtime::RuntimeConfig {
        slots: 1,
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    let first = registry::load_file(&rt, &adversary_wasm()).await.unwrap();
    let entries: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0].starts_with(&first.digest),
        "keyed by content hash: {entries:?}"
    );
    let written = std::fs::metadata(cache.path().join(&entries[0])).unwrap();
    // A second load reuses the entry rather than rewriting it (a rewrite is a
    // new file renamed into place), and marks it as recently used.
    let second = registry::load_file(&rt, &adversary_wasm()).await.unwrap();
    assert_eq!(second.task_types, first.task_types);
    let used = std::fs::metadata(cache.path().join(&entries[0])).unwrap();
    assert_eq!(written.ino(), used.ino());
    assert!(used.modified().unwrap() >= written.modified().unwrap());
    // A corrupt entry is ignored and replaced, not fatal.
    let entry = cache.path().join(&entries[0]);
    std::fs::write(&entry, b"garbage").unwrap();
    let third = registry::load_file(&rt, &adversary_wasm()).await.unwrap();
    assert_eq!(third.name, "adversary");
    let rewritten = std::fs::read(&entry).unwrap();
    assert_ne!(rewritten, b"garbage", "the corrupt entry was replaced");
    assert!(rewritten.len() > 1024);
}

#[tokio::test]
async fn a_describe_that_spins_is_refused_like_one_that_sleeps() {
    let bytes = std::fs::read(support::guest_wasm("sluice_test_spin_describe")).unwrap();
    let err = single_error("spin.wasm", bytes).await;
    let message = err.to_string();
    assert!(
        message.ends_with("describe() failed: did not return within 10s"),
        "{message}"
    );
}
